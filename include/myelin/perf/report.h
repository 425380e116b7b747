// Report: the one document model behind every myelin report.
//
// `myelin estimate` and every `myelin bench <part>` build a Report and hand it
// to render_markdown() / render_json(), so all reports share one layout: a
// title, when it was generated, the method, the machine it ran on (for
// measured reports), then numbered sections of bullets, paragraphs and tables.
// A table cell keeps both its display text and, for numbers, the full-
// precision value, so the JSON carries the same numbers as data, not strings.
// Reports are plain values; build them on one thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/perf/machine_info.h"

namespace myelin::perf {

struct Cell {
  std::string text;             // as shown in Markdown
  std::optional<double> value;  // the number behind `text`, if it is one

  static Cell str(std::string text) { return {std::move(text), std::nullopt}; }
  static Cell num(double value, std::string text) { return {std::move(text), value}; }
};

struct Bullet {
  std::string label;
  Cell value;
  // Markdown "- label: **value**" when bold (the seed style), else plain.
  bool bold = true;
  std::string separator = ": ";
};

struct Paragraph {
  std::string text;
};

enum class Align { kLeft, kRight };

struct Column {
  std::string name;
  Align align = Align::kRight;
};

struct Table {
  std::vector<Column> columns;
  std::vector<std::vector<Cell>> rows;

  // Appends a row; the row must have one cell per column (checked when rendered).
  void add_row(std::vector<Cell> row) { rows.push_back(std::move(row)); }
};

using Block = std::variant<std::vector<Bullet>, Paragraph, Table>;

struct Section {
  std::string title;
  std::vector<Block> blocks;

  Section& bullets(std::vector<Bullet> items) {
    blocks.emplace_back(std::move(items));
    return *this;
  }
  Section& paragraph(std::string text) {
    blocks.emplace_back(Paragraph{std::move(text)});
    return *this;
  }
  Section& table(Table t) {
    blocks.emplace_back(std::move(t));
    return *this;
  }
};

struct Report {
  std::string title;
  std::string generated;               // ISO 8601 UTC
  std::optional<MachineInfo> machine;  // set for measured reports
  std::string method;                  // one line; shown with the machine
  std::vector<Section> sections;       // rendered as "## N) title"
  std::string footer;                  // after a rule, if not empty
  nlohmann::json data;                 // domain data for --format json (optional)

  Section& add_section(std::string section_title) {
    sections.push_back(Section{std::move(section_title), {}});
    return sections.back();
  }
};

enum class Format { kMarkdown, kJson };

// Parses "md" / "markdown" / "json".
std::optional<Format> parse_format(std::string_view name) noexcept;

std::string render_markdown(const Report& report);
// Pretty-printed JSON with the header, the sections (typed cells) and `data`.
std::string render_json(const Report& report);
std::string render(const Report& report, Format format);

// The current UTC time as "2026-02-13T04:44:44.434347Z".
std::string utc_timestamp_now();
// Accepts "YYYY-MM-DDTHH:MM:SS[.fraction]Z" or with a "+HH:MM" offset;
// returns the text unchanged when valid.
Result<std::string> validate_timestamp(std::string_view text);

// Writes `content` to `path` atomically (temporary file + rename), creating
// parent directories; on error nothing is left at `path`.
Status write_file_atomic(const std::string& path, std::string_view content);

}  // namespace myelin::perf
