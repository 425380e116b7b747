#include "bench/harness/render.h"

#include <cmath>
#include <set>
#include <string>

#include "myelin/perf/format.h"

namespace myelin::bench::harness {
namespace {

nlohmann::json json_of(const Value& v) {
  if (v.missing) return nullptr;
  if (v.number) return *v.number;
  return v.text;
}

perf::Cell cell_of(const Value& v) {
  return v.number ? perf::Cell::num(*v.number, v.text) : perf::Cell::str(v.text);
}

// A measurement for a reader: integers grouped, others to about three
// significant digits (the JSON keeps the full value).
std::string readable(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return perf::group_int(v);
  const double a = std::abs(v);
  return perf::fixed(v, a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

std::string goal_text(const Target& t) {
  const char* op = t.better == Better::kLower ? "<= " : ">= ";
  return op + perf::param(t.goal, 0) + (t.unit.empty() ? "" : " " + t.unit);
}

Status check_table(const Table& t) {
  if (t.columns.empty()) return invalid_argument("table '" + t.key + "': no columns");
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    if (t.rows[r].size() != t.columns.size())
      return invalid_argument("table '" + t.key + "': row " + std::to_string(r) + " has " +
                              std::to_string(t.rows[r].size()) + " cells for " +
                              std::to_string(t.columns.size()) + " columns");
  }
  return {};
}

// Walks every block once, building both renderings side by side.
struct Renderer {
  perf::Report report;
  nlohmann::json data = {{"tables", nlohmann::json::object()},
                         {"figures", nlohmann::json::object()},
                         {"targets", nlohmann::json::array()},
                         {"charts", nlohmann::json::array()}};
  std::set<std::string> keys;

  Status claim(const std::string& kind, const std::string& key) {
    if (key.empty()) return invalid_argument(kind + " without a key");
    if (!keys.insert(kind + ":" + key).second)
      return invalid_argument(kind + " key '" + key + "' is used twice");
    return {};
  }

  Status add(perf::Section& out, const Paragraph& p) {
    out.paragraph(p.text);
    return {};
  }

  Status add(perf::Section& out, const Table& t) {
    MYELIN_RETURN_IF_ERROR(claim("table", t.key));
    MYELIN_RETURN_IF_ERROR(check_table(t));
    perf::Table md;
    for (const Column& c : t.columns) md.columns.push_back({c.title, c.align});
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : t.rows) {
      std::vector<perf::Cell> cells;
      nlohmann::json j = nlohmann::json::object();
      for (std::size_t c = 0; c < row.size(); ++c) {
        cells.push_back(cell_of(row[c]));
        j[t.columns[c].key] = json_of(row[c]);
      }
      md.add_row(std::move(cells));
      rows.push_back(std::move(j));
    }
    data["tables"][t.key] = std::move(rows);
    out.table(std::move(md));
    return {};
  }

  Status add(perf::Section& out, const std::vector<Figure>& figures) {
    std::vector<perf::Bullet> bullets;
    for (const Figure& f : figures) {
      MYELIN_RETURN_IF_ERROR(claim("figure", f.key));
      bullets.push_back({f.label, cell_of(f.value)});
      data["figures"][f.key] = json_of(f.value);
    }
    out.bullets(std::move(bullets));
    return {};
  }

  Status add(perf::Section& out, const std::vector<Check>& checks) {
    perf::Table md{{{"Target", perf::Align::kLeft},
                    {"Goal", perf::Align::kLeft},
                    {"Measured", perf::Align::kLeft},
                    {"Verdict", perf::Align::kLeft}},
                   {}};
    for (const Check& c : checks) {
      const Target& t = c.target;
      Verdict v;
      if (c.measured) {
        v = judge(t, *c.measured);
      } else {
        v.text = "not measured";
      }
      std::string measured =
          c.measured ? readable(*c.measured) + (t.unit.empty() ? "" : " " + t.unit) : "—";
      if (!c.note.empty()) measured += " (" + c.note + ")";
      md.add_row({perf::Cell::str(t.what + (t.source.empty() ? "" : " (" + t.source + ")")),
                  perf::Cell::str(goal_text(t)),
                  c.measured ? perf::Cell::num(*c.measured, measured) : perf::Cell::str(measured),
                  perf::Cell::str(v.met ? v.text : "**" + v.text + "**")});
      data["targets"].push_back({{"what", t.what},
                                 {"goal", t.goal},
                                 {"unit", t.unit},
                                 {"source", t.source},
                                 {"better", t.better == Better::kLower ? "lower" : "higher"},
                                 {"measured", c.measured ? nlohmann::json(*c.measured) : nullptr},
                                 {"met", v.met},
                                 {"verdict", v.text}});
    }
    out.table(std::move(md));
    return {};
  }

  Status add(perf::Section&, const Chart& c) {
    MYELIN_RETURN_IF_ERROR(claim("chart", c.key));
    const auto& tables = data["tables"];
    if (!tables.contains(c.table))
      return invalid_argument("chart '" + c.key + "': table '" + c.table +
                              "' is not among the tables before it");
    if (c.series.empty()) return invalid_argument("chart '" + c.key + "': no series");
    const nlohmann::json& rows = tables[c.table];
    std::vector<std::string> columns = c.series;
    columns.push_back(c.x);
    for (const std::string& col : columns) {
      if (!rows.empty() && !rows[0].contains(col))
        return invalid_argument("chart '" + c.key + "': table '" + c.table + "' has no column '" +
                                col + "'");
    }
    data["charts"].push_back({{"key", c.key},
                              {"title", c.title},
                              {"table", c.table},
                              {"x", c.x},
                              {"series", c.series},
                              {"y_label", c.axis_label},
                              {"kind", c.kind == Chart::Kind::kBar ? "bar" : "line"},
                              {"log", c.log}});
    return {};
  }
};

Result<Renderer> render(const Results& r) {
  Renderer out;
  out.report.title = r.title;
  out.report.generated = r.generated;
  out.report.machine = r.machine;
  out.report.method = r.method;
  out.report.footer = r.footer;
  out.data["part"] = r.part;
  for (const Section& s : r.sections) {
    perf::Section& md = out.report.add_section(s.title);
    for (const Block& b : s.blocks) {
      MYELIN_RETURN_IF_ERROR(std::visit([&](const auto& block) { return out.add(md, block); }, b));
    }
  }
  return out;
}

}  // namespace

Result<perf::Report> to_report(const Results& results) {
  MYELIN_ASSIGN_OR_RETURN(Renderer r, render(results));
  r.report.data = std::move(r.data);
  return std::move(r.report);
}

Result<nlohmann::json> to_json(const Results& results) {
  MYELIN_ASSIGN_OR_RETURN(Renderer r, render(results));
  return std::move(r.data);
}

}  // namespace myelin::bench::harness
