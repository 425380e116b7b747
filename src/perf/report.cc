#include "myelin/perf/report.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>

namespace myelin::perf {
namespace {

void render_bullets(std::string& out, const std::vector<Bullet>& items) {
  for (const Bullet& b : items) {
    out += "- ";
    out += b.label;
    out += b.separator;
    out += b.bold ? "**" + b.value.text + "**" : b.value.text;
    out += '\n';
  }
}

void render_table(std::string& out, const Table& t) {
  out += '|';
  for (const Column& c : t.columns) out += " " + c.name + " |";
  out += "\n|";
  for (const Column& c : t.columns) out += c.align == Align::kRight ? "---:|" : "---|";
  out += '\n';
  for (const auto& row : t.rows) {
    out += '|';
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      // A short row renders as empty cells rather than corrupting the table.
      out += " " + (i < row.size() ? row[i].text : std::string()) + " |";
    }
    out += '\n';
  }
}

nlohmann::json cell_json(const Cell& c) {
  if (c.value) return nlohmann::json{{"text", c.text}, {"value", *c.value}};
  return nlohmann::json{{"text", c.text}};
}

nlohmann::json block_json(const Block& block) {
  if (const auto* bullets = std::get_if<std::vector<Bullet>>(&block)) {
    nlohmann::json items = nlohmann::json::array();
    for (const Bullet& b : *bullets) {
      nlohmann::json item = cell_json(b.value);
      item["label"] = b.label;
      items.push_back(std::move(item));
    }
    return {{"type", "bullets"}, {"items", std::move(items)}};
  }
  if (const auto* p = std::get_if<Paragraph>(&block)) {
    return {{"type", "paragraph"}, {"text", p->text}};
  }
  const auto& t = std::get<Table>(block);
  nlohmann::json columns = nlohmann::json::array();
  for (const Column& c : t.columns) columns.push_back(c.name);
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : t.rows) {
    nlohmann::json r = nlohmann::json::array();
    for (const Cell& c : row)
      r.push_back(c.value ? nlohmann::json(*c.value) : nlohmann::json(c.text));
    rows.push_back(std::move(r));
  }
  return {{"type", "table"}, {"columns", std::move(columns)}, {"rows", std::move(rows)}};
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::optional<Format> parse_format(std::string_view name) noexcept {
  if (name == "md" || name == "markdown") return Format::kMarkdown;
  if (name == "json") return Format::kJson;
  return std::nullopt;
}

std::string render_markdown(const Report& report) {
  std::string out = "# " + report.title + "\n";
  if (!report.generated.empty()) out += "_Generated: " + report.generated + "_\n";
  int number = 0;
  if (report.machine) {
    out += "\n## " + std::to_string(++number) + ") Machine and method\n";
    Table t{{{"Parameter", Align::kLeft}, {"Value", Align::kLeft}}, {}};
    for (auto& [label, value] : report.machine->fields()) {
      t.add_row({Cell::str(label), Cell::str(value)});
    }
    if (!report.method.empty()) t.add_row({Cell::str("Method"), Cell::str(report.method)});
    render_table(out, t);
  }
  for (const Section& s : report.sections) {
    out += "\n## " + std::to_string(++number) + ") " + s.title + "\n";
    bool first = true;
    for (const Block& block : s.blocks) {
      if (!first) out += '\n';
      first = false;
      if (const auto* bullets = std::get_if<std::vector<Bullet>>(&block)) {
        render_bullets(out, *bullets);
      } else if (const auto* p = std::get_if<Paragraph>(&block)) {
        out += p->text + '\n';
      } else {
        render_table(out, std::get<Table>(block));
      }
    }
  }
  if (!report.footer.empty()) out += "\n---\n" + report.footer + "\n";
  return out;
}

std::string render_json(const Report& report) {
  nlohmann::json j;
  j["title"] = report.title;
  j["generated"] = report.generated;
  if (!report.method.empty()) j["method"] = report.method;
  if (report.machine) {
    nlohmann::json m;
    for (auto& [label, value] : report.machine->fields()) m[label] = value;
    j["machine"] = std::move(m);
  }
  nlohmann::json sections = nlohmann::json::array();
  for (const Section& s : report.sections) {
    nlohmann::json blocks = nlohmann::json::array();
    for (const Block& b : s.blocks) blocks.push_back(block_json(b));
    sections.push_back({{"title", s.title}, {"blocks", std::move(blocks)}});
  }
  j["sections"] = std::move(sections);
  if (!report.data.is_null()) j["data"] = report.data;
  if (!report.footer.empty()) j["footer"] = report.footer;
  return j.dump(2) + "\n";
}

std::string render(const Report& report, Format format) {
  return format == Format::kJson ? render_json(report) : render_markdown(report);
}

std::string utc_timestamp_now() {
  const auto now = std::chrono::system_clock::now();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(us.count() / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us.count() % 1000000));
  return buf;
}

Result<std::string> validate_timestamp(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS, then optional .fraction, then Z or +HH:MM / -HH:MM.
  auto bad = [&](const char* why) {
    return invalid_argument("timestamp '" + std::string(text) + "' is not ISO 8601 (" + why +
                            "); expected e.g. 2026-02-13T04:44:44Z");
  };
  if (text.size() < 20) return bad("too short");
  const std::string_view date = text.substr(0, 10);
  if (!all_digits(date.substr(0, 4)) || date[4] != '-' || !all_digits(date.substr(5, 2)) ||
      date[7] != '-' || !all_digits(date.substr(8, 2))) {
    return bad("date must be YYYY-MM-DD");
  }
  if (text[10] != 'T' && text[10] != 't') return bad("missing 'T'");
  const std::string_view time = text.substr(11, 8);
  if (!all_digits(time.substr(0, 2)) || time[2] != ':' || !all_digits(time.substr(3, 2)) ||
      time[5] != ':' || !all_digits(time.substr(6, 2))) {
    return bad("time must be HH:MM:SS");
  }
  const int month = std::stoi(std::string(date.substr(5, 2)));
  const int day = std::stoi(std::string(date.substr(8, 2)));
  const int hour = std::stoi(std::string(time.substr(0, 2)));
  const int minute = std::stoi(std::string(time.substr(3, 2)));
  const int second = std::stoi(std::string(time.substr(6, 2)));
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return bad("a field is out of range");
  }
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest[0] == '.') {
    std::size_t n = 1;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
    if (n == 1) return bad("empty fraction");
    rest.remove_prefix(n);
  }
  if (rest == "Z" || rest == "z") return std::string(text);
  if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && all_digits(rest.substr(1, 2)) &&
      rest[3] == ':' && all_digits(rest.substr(4, 2))) {
    return std::string(text);
  }
  return bad("zone must be Z or +HH:MM");
}

Status write_file_atomic(const std::string& path, std::string_view content) {
  std::error_code ec;
  const std::filesystem::path target(path);
  if (target.has_parent_path()) {
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec)
      return io_error("create directory '" + target.parent_path().string() + "': " + ec.message());
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("open '" + tmp + "'", errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return errno_error("write '" + tmp + "'", err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return errno_error("close '" + tmp + "'", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return errno_error("rename to '" + path + "'", err);
  }
  return {};
}

}  // namespace myelin::perf
