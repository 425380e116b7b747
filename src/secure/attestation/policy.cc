// The attestation policy file (include/myelin/secure/attestation_policy.h,
// docs/attestation.md "Policy file"). toml++ throws on syntax errors; the
// exception is caught here and never leaves this file.
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "myelin/secure/attestation_policy.h"
#include "src/secure/attestation/x509.h"

namespace myelin::secure {
namespace {

// The prefix of every message: "FILE:LINE: 'KEY'".
std::string where(std::string_view origin, const toml::node& node, std::string_view key) {
  return std::string(origin) + ":" + std::to_string(node.source().begin.line) + ": '" +
         std::string(key) + "'";
}

Result<bool> boolean(const toml::node& node, std::string_view origin, std::string_view key) {
  const auto v = node.value_exact<bool>();
  if (!v) return invalid_argument(where(origin, node, key) + ": expected true or false");
  return *v;
}

Result<std::string> string(const toml::node& node, std::string_view origin, std::string_view key) {
  const auto v = node.value_exact<std::string>();
  if (!v) return invalid_argument(where(origin, node, key) + ": expected a string");
  return *v;
}

// An array of strings; a single string counts as a one-element set when
// `single_ok`.
Result<std::vector<std::pair<std::string, const toml::node*>>> strings(const toml::node& node,
                                                                       std::string_view origin,
                                                                       std::string_view key,
                                                                       bool single_ok) {
  std::vector<std::pair<std::string, const toml::node*>> out;
  if (single_ok && node.is_string()) {
    out.emplace_back(*node.value_exact<std::string>(), &node);
    return out;
  }
  const auto* arr = node.as_array();
  if (arr == nullptr) {
    return invalid_argument(where(origin, node, key) +
                            (single_ok ? ": expected a string or an array of strings"
                                       : ": expected an array of strings"));
  }
  if (arr->empty()) {
    return invalid_argument(where(origin, node, key) +
                            ": empty array (it would accept nothing; leave the key out to accept "
                            "any value)");
  }
  for (const auto& element : *arr) {
    const auto v = element.value_exact<std::string>();
    if (!v) return invalid_argument(where(origin, element, key) + ": element is not a string");
    out.emplace_back(*v, &element);
  }
  return out;
}

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A measurement rule: one hex value or a set, each exactly `size` bytes.
Result<MeasurementPolicy::Rule> measurement_rule(const toml::node& node, std::string_view origin,
                                                 std::string_view key, std::string rule_name,
                                                 std::size_t size) {
  MYELIN_ASSIGN_OR_RETURN(auto values, strings(node, origin, key, true));
  MeasurementPolicy::Rule rule{std::move(rule_name), {}};
  for (const auto& [text, at] : values) {
    if (text.size() != 2 * size) {
      return invalid_argument(where(origin, *at, key) + ": '" + text + "' is " +
                              std::to_string(text.size()) + " hex digits, expected " +
                              std::to_string(2 * size) + " (" + std::to_string(size) + " bytes)");
    }
    std::vector<std::byte> value(size);
    for (std::size_t i = 0; i < size; ++i) {
      const int hi = hex_digit(text[2 * i]);
      const int lo = hex_digit(text[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        return invalid_argument(where(origin, *at, key) + ": '" + text +
                                "' is not hex (bad digit at position " +
                                std::to_string(2 * i + (hi < 0 ? 0 : 1)) + ")");
      }
      value[i] = std::byte((hi << 4) | lo);
    }
    rule.allowed.push_back(std::move(value));
  }
  return rule;
}

Status unknown_key(std::string_view origin, const toml::node& node, std::string_view key,
                   std::string_view known) {
  return invalid_argument(where(origin, node, key) + ": unknown key (known: " + std::string(known) +
                          ")");
}

const toml::table* table(const toml::node& node) { return node.as_table(); }

Status parse_minimum_tcb(const toml::node& node, std::string_view origin, snp::Tcb& tcb) {
  const auto* t = table(node);
  if (t == nullptr) {
    return invalid_argument(where(origin, node, "sev-snp.minimum_tcb") +
                            ": expected a table (bootloader, tee, snp, microcode)");
  }
  for (const auto& [k, v] : *t) {
    const std::string key = "sev-snp.minimum_tcb." + std::string(k.str());
    std::uint8_t* field = nullptr;
    if (k.str() == "bootloader") field = &tcb.bootloader;
    if (k.str() == "tee") field = &tcb.tee;
    if (k.str() == "snp") field = &tcb.snp;
    if (k.str() == "microcode") field = &tcb.microcode;
    if (field == nullptr) return unknown_key(origin, v, key, "bootloader, tee, snp, microcode");
    const auto n = v.value_exact<std::int64_t>();
    if (!n) return invalid_argument(where(origin, v, key) + ": expected an integer");
    if (*n < 0 || *n > 255) {
      return out_of_range(where(origin, v, key) + ": " + std::to_string(*n) +
                          " is outside [0, 255] (an SVN is one byte)");
    }
    *field = static_cast<std::uint8_t>(*n);
  }
  return ok_status();
}

Status parse_snp(const toml::node& node, std::string_view origin, AttestationPolicy::Snp& out) {
  const auto* t = table(node);
  if (t == nullptr) return invalid_argument(where(origin, node, "sev-snp") + ": expected a table");
  for (const auto& [k, v] : *t) {
    const std::string key = "sev-snp." + std::string(k.str());
    if (k.str() == "allow_debug") {
      MYELIN_ASSIGN_OR_RETURN(out.policy.allow_debug, boolean(v, origin, key));
    } else if (k.str() == "products") {
      MYELIN_ASSIGN_OR_RETURN(auto names, strings(v, origin, key, false));
      for (const auto& [name, at] : names) {
        snp::Product p{};
        if (name == "Milan") {
          p = snp::Product::kMilan;
        } else if (name == "Genoa") {
          p = snp::Product::kGenoa;
        } else if (name == "Turin") {
          p = snp::Product::kTurin;
        } else {
          return invalid_argument(where(origin, *at, key) + ": unknown product '" + name +
                                  "' (known: Milan, Genoa, Turin)");
        }
        out.policy.products.push_back(p);
      }
    } else if (k.str() == "minimum_tcb") {
      MYELIN_RETURN_IF_ERROR(parse_minimum_tcb(v, origin, out.policy.minimum_tcb));
    } else if (k.str() == "measurement") {
      MYELIN_ASSIGN_OR_RETURN(auto rule, measurement_rule(v, origin, key, "measurement", 48));
      out.measurements.rules.push_back(std::move(rule));
    } else if (k.str() == "host_data") {
      MYELIN_ASSIGN_OR_RETURN(auto rule, measurement_rule(v, origin, key, "host_data", 32));
      out.measurements.rules.push_back(std::move(rule));
    } else {
      return unknown_key(origin, v, key,
                         "allow_debug, products, minimum_tcb, measurement, host_data");
    }
  }
  return ok_status();
}

constexpr std::array<std::string_view, 7> kTcbStatuses = {"UpToDate",
                                                          "SWHardeningNeeded",
                                                          "ConfigurationNeeded",
                                                          "ConfigurationAndSWHardeningNeeded",
                                                          "OutOfDate",
                                                          "OutOfDateConfigurationNeeded",
                                                          "Revoked"};

Status parse_tdx(const toml::node& node, std::string_view origin, AttestationPolicy::Tdx& out) {
  const auto* t = table(node);
  if (t == nullptr) return invalid_argument(where(origin, node, "tdx") + ": expected a table");
  for (const auto& [k, v] : *t) {
    const std::string key = "tdx." + std::string(k.str());
    const std::string_view name = k.str();
    if (name == "allow_debug") {
      MYELIN_ASSIGN_OR_RETURN(out.policy.allow_debug, boolean(v, origin, key));
    } else if (name == "tcb_statuses") {
      MYELIN_ASSIGN_OR_RETURN(auto names, strings(v, origin, key, false));
      out.policy.accepted_tcb_statuses.clear();
      for (const auto& [status, at] : names) {
        if (std::find(kTcbStatuses.begin(), kTcbStatuses.end(), status) == kTcbStatuses.end()) {
          return invalid_argument(where(origin, *at, key) + ": unknown TCB status '" + status +
                                  "' (known: UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
                                  "ConfigurationAndSWHardeningNeeded, OutOfDate, "
                                  "OutOfDateConfigurationNeeded, Revoked)");
        }
        out.policy.accepted_tcb_statuses.push_back(status);
      }
      out.require_tcb_info = true;
    } else if (name == "mrtd" || name == "rtmr0" || name == "rtmr1" || name == "rtmr2" ||
               name == "rtmr3" || name == "mrconfigid") {
      MYELIN_ASSIGN_OR_RETURN(auto rule, measurement_rule(v, origin, key, std::string(name), 48));
      out.measurements.rules.push_back(std::move(rule));
    } else {
      return unknown_key(origin, v, key,
                         "allow_debug, tcb_statuses, mrtd, rtmr0, rtmr1, rtmr2, rtmr3, mrconfigid");
    }
  }
  return ok_status();
}

}  // namespace

std::string_view to_string(Platform p) noexcept {
  return p == Platform::kSevSnp ? "sev-snp" : "tdx";
}

bool AttestationPolicy::accepts(Platform p) const noexcept {
  return std::find(platforms.begin(), platforms.end(), p) != platforms.end();
}

Result<AttestationPolicy> parse_attestation_policy(std::string_view text, std::string_view origin,
                                                   std::string_view base_dir) {
  toml::table doc;
  try {
    doc = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    return parse_error(std::string(origin) + ":" + std::to_string(at.line) + ":" +
                       std::to_string(at.column) + ": " + std::string(e.description()));
  }
  AttestationPolicy policy;
  const toml::node* snp_section = nullptr;
  const toml::node* tdx_section = nullptr;
  bool have_platforms = false;
  for (const auto& [k, v] : doc) {
    const std::string_view key = k.str();
    if (key == "platforms") {
      MYELIN_ASSIGN_OR_RETURN(auto names, strings(v, origin, key, false));
      for (const auto& [name, at] : names) {
        Platform p{};
        if (name == "sev-snp") {
          p = Platform::kSevSnp;
        } else if (name == "tdx") {
          p = Platform::kTdx;
        } else {
          return invalid_argument(where(origin, *at, key) + ": unknown platform '" + name +
                                  "' (known: sev-snp, tdx)");
        }
        if (policy.accepts(p)) {
          return invalid_argument(where(origin, *at, key) + ": '" + name + "' is listed twice");
        }
        policy.platforms.push_back(p);
      }
      have_platforms = true;
    } else if (key == "collateral") {
      MYELIN_ASSIGN_OR_RETURN(auto dir, string(v, origin, key));
      if (dir.empty()) return invalid_argument(where(origin, v, key) + ": empty path");
      std::filesystem::path path(dir);
      if (path.is_relative() && !base_dir.empty()) path = std::filesystem::path(base_dir) / path;
      policy.collateral_dir = path.string();
    } else if (key == "max_evidence_age") {
      return invalid_argument(
          where(origin, v, key) +
          ": SEV-SNP reports and TDX quotes carry no time, so their age cannot be checked; "
          "freshness comes from the handshake binding (REPORT_DATA carries this session's "
          "transcript hash). Remove the key");
    } else if (key == "sev-snp") {
      snp_section = &v;
    } else if (key == "tdx") {
      tdx_section = &v;
    } else {
      return unknown_key(origin, v, key, "platforms, collateral, sev-snp, tdx");
    }
  }
  if (!have_platforms) {
    return invalid_argument(std::string(origin) +
                            ": 'platforms' is missing (e.g. platforms = [\"sev-snp\"])");
  }
  if (snp_section != nullptr) {
    if (!policy.accepts(Platform::kSevSnp)) {
      return invalid_argument(where(origin, *snp_section, "sev-snp") +
                              ": section given but 'sev-snp' is not in platforms");
    }
    MYELIN_RETURN_IF_ERROR(parse_snp(*snp_section, origin, policy.snp));
  }
  if (tdx_section != nullptr) {
    if (!policy.accepts(Platform::kTdx)) {
      return invalid_argument(where(origin, *tdx_section, "tdx") +
                              ": section given but 'tdx' is not in platforms");
    }
    MYELIN_RETURN_IF_ERROR(parse_tdx(*tdx_section, origin, policy.tdx));
  }
  return policy;
}

Result<AttestationPolicy> load_attestation_policy(std::string_view path) {
  MYELIN_ASSIGN_OR_RETURN(auto bytes, detail::read_file_bytes(std::string(path)));
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const auto parent = std::filesystem::path(path).parent_path().string();
  return parse_attestation_policy(text, path, parent.empty() ? "." : parent);
}

}  // namespace myelin::secure
