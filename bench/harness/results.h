// The results model every bench part fills: measure -> Results -> render.
//
// A part measures, then describes what it found once, here: sample sets
// (sorted, with percentiles), tables whose columns have JSON keys, headline
// figures and targets. render.h turns one Results into the Markdown and the
// JSON of the report, so no figure is entered twice. Targets are data (the
// goal, its unit, where it comes from and which direction is better) and
// every verdict is computed from the measurement by judge(); a part never
// writes "met" itself. Plain values; build them on one thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "myelin/base/latency_recorder.h"
#include "myelin/base/result.h"
#include "myelin/perf/machine_info.h"
#include "myelin/perf/report.h"

namespace myelin::bench::harness {

// Samples of one quantity (ns/op, MB/s, ...), sorted once. Percentiles are
// nearest rank on the sorted samples (percentile_sorted in latency_recorder.h),
// the definition every report states.
class Samples {
 public:
  // An error when `values` is empty or holds a NaN.
  static Result<Samples> of(std::vector<double> values);
  static Result<Samples> of(const LatencyRecorder& recorder);

  [[nodiscard]] std::size_t count() const noexcept { return sorted_.size(); }
  [[nodiscard]] std::span<const double> sorted() const noexcept { return sorted_; }
  [[nodiscard]] double min() const noexcept { return sorted_.front(); }
  [[nodiscard]] double max() const noexcept { return sorted_.back(); }
  // p in [0, 100]; p50 is the median.
  [[nodiscard]] double percentile(double p) const noexcept;
  [[nodiscard]] double mean() const noexcept;

 private:
  explicit Samples(std::vector<double> sorted) : sorted_(std::move(sorted)) {}
  std::vector<double> sorted_;
};

// One table cell or figure: what Markdown shows and what JSON carries (the
// number when there is one, null when the quantity was not measured, else
// the text).
struct Value {
  std::string text;
  std::optional<double> number;
  bool missing = false;

  static Value num(double v, std::string text) { return {std::move(text), v, false}; }
  static Value str(std::string text) { return {std::move(text), std::nullopt, false}; }
  // Not measured (or not applicable): JSON null, `why` in Markdown.
  static Value none(std::string why) { return {std::move(why), std::nullopt, true}; }
  // `v` with `decimals` decimals and an optional unit suffix ("x", " µs").
  static Value fixed(double v, int decimals, std::string_view suffix = "");
  // A percentage: `v` is already in percent.
  static Value percent(double v, int decimals = 1);
  // A count with thousands separators.
  static Value count(double v);
};

struct Column {
  std::string key;    // JSON name of the field
  std::string title;  // Markdown header
  perf::Align align = perf::Align::kRight;
};

struct Table {
  std::string key;  // JSON name under "tables"; unique in a Results
  std::vector<Column> columns;
  std::vector<std::vector<Value>> rows;  // one Value per column (checked when rendered)

  void add_row(std::vector<Value> row) { rows.push_back(std::move(row)); }
};

struct Figure {
  std::string key;    // JSON name under "figures"; unique in a Results
  std::string label;  // Markdown bullet label
  Value value;
};

enum class Better { kLower, kHigher };
std::string_view to_string(Better b) noexcept;

struct Target {
  std::string what;    // "submit, 1 producer"
  double goal = 0;     // in `unit`
  std::string unit;    // "ns/op"
  std::string source;  // where the goal comes from ("issue 3", "seed 001")
  Better better = Better::kLower;
};

struct Verdict {
  bool met = false;
  // How far the measurement is from the goal, as a fraction of the goal:
  // positive on the good side, negative on the bad side; 0 when the goal is 0.
  double margin = 0;
  std::string text;  // "met", "missed by 12.0%", "not measured: ..."
};

// Compares `measured` with the target's goal in its direction (a goal is met
// when the measurement equals it). NaN is never met.
Verdict judge(const Target& target, double measured);

// A target and what this run measured for it.
struct Check {
  Target target;
  std::optional<double> measured;  // nullopt: could not be measured (see `note`)
  std::string note;                // optional: how it was measured, or why not
};

struct Paragraph {
  std::string text;
};

// A chart of columns of a table that comes before it in the same Results,
// drawn by bench/render/charts.py from the JSON into <stem>-<key>.svg.
struct Chart {
  enum class Kind { kBar, kLine };
  std::string key;  // unique in a Results; the file name's suffix
  std::string title;
  std::string table;                // a Table's key
  std::string x;                    // the column of the categories (bar) or x axis (line)
  std::vector<std::string> series;  // the columns plotted
  std::string axis_label;           // the value axis
  Kind kind = Kind::kBar;
  bool log = false;  // logarithmic value axis
};

using Block = std::variant<Paragraph, Table, std::vector<Figure>, std::vector<Check>, Chart>;

struct Section {
  std::string title;
  std::vector<Block> blocks;

  Section& paragraph(std::string text) {
    blocks.emplace_back(Paragraph{std::move(text)});
    return *this;
  }
  Section& table(Table t) {
    blocks.emplace_back(std::move(t));
    return *this;
  }
  Section& figures(std::vector<Figure> f) {
    blocks.emplace_back(std::move(f));
    return *this;
  }
  Section& checks(std::vector<Check> c) {
    blocks.emplace_back(std::move(c));
    return *this;
  }
  Section& chart(Chart c) {
    blocks.emplace_back(std::move(c));
    return *this;
  }
};

struct Results {
  std::string part;       // `myelin bench <part>`
  std::string title;      // report title
  std::string generated;  // ISO 8601 UTC (perf::utc_timestamp_now())
  std::optional<perf::MachineInfo> machine;
  std::string method;
  std::vector<Section> sections;
  std::string footer;

  Section& add_section(std::string section_title) {
    sections.push_back(Section{std::move(section_title), {}});
    return sections.back();
  }
};

}  // namespace myelin::bench::harness
