#include "score_output.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace psfphot::apps {
namespace {

// A minimal streaming JSON writer: enough for one nested document of numbers and strings.
class JsonWriter {
 public:
  void begin_object(const char* key = nullptr) { open(key, '{'); }
  void end_object() { close('}'); }
  void begin_array(const char* key) { open(key, '['); }
  void end_array() { close(']'); }
  void number(const char* key, double v) { item(key, format(v)); }
  void integer(const char* key, long v) { item(key, std::to_string(v)); }
  void string(const char* key, const std::string& v) { item(key, quote(v)); }
  void boolean(const char* key, bool v) { item(key, v ? "true" : "false"); }
  void null(const char* key) { item(key, "null"); }
  std::string str() const { return out_ + "\n"; }

 private:
  static std::string format(double v) {
    if (!std::isfinite(v)) return "null";  // JSON has no NaN or infinity
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.12g", v);
    return buf;
  }
  static std::string quote(const std::string& s) {
    std::string q = "\"";
    for (char ch : s) {
      if (ch == '"' || ch == '\\') {
        q += '\\';
        q += ch;
      } else if (static_cast<unsigned char>(ch) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(ch));
        q += buf;
      } else {
        q += ch;
      }
    }
    return q + "\"";
  }
  void prefix(const char* key) {
    if (!first_.empty()) {
      out_ += first_.back() ? "\n" : ",\n";
      first_.back() = false;
    }
    out_.append(2 * first_.size(), ' ');
    if (key) out_ += quote(key) + ": ";
  }
  void item(const char* key, const std::string& v) {
    prefix(key);
    out_ += v;
  }
  void open(const char* key, char bracket) {
    prefix(key);
    out_ += bracket;
    first_.push_back(true);
  }
  void close(char bracket) {
    const bool empty = first_.back();
    first_.pop_back();
    if (!empty) {
      out_ += "\n";
      out_.append(2 * first_.size(), ' ');
    }
    out_ += bracket;
  }
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
};

void write_bin(JsonWriter& j, const char* key, const ScoreBin& b) {
  j.begin_object(key);
  j.number("snr_min", b.snr_min);
  j.number("snr_max", b.snr_max);
  j.integer("n_true", b.n_true);
  j.integer("n_true_clean", b.n_true_clean);
  j.integer("n_matched", b.n_matched);
  j.integer("n_matched_clean", b.n_matched_clean);
  j.integer("n_matched_flagged", b.n_matched_flagged);
  j.number("completeness", b.completeness);
  j.number("completeness_clean", b.completeness_clean);
  j.integer("n_errors", b.n_errors);
  j.number("centroid_bias_x_px", b.centroid_bias_x_px);
  j.number("centroid_bias_y_px", b.centroid_bias_y_px);
  j.number("centroid_rms_x_px", b.centroid_rms_x_px);
  j.number("centroid_rms_y_px", b.centroid_rms_y_px);
  j.number("centroid_rms_px", b.centroid_rms_px);
  j.number("centroid_bound_simple_px", b.centroid_bound_simple_px);
  j.number("centroid_bound_full_px", b.centroid_bound_full_px);
  j.number("centroid_rms_over_bound", b.centroid_rms_over_bound);
  j.number("centroid_bound_literal_px", b.centroid_bound_literal_px);
  j.number("centroid_rms_over_bound_literal", b.centroid_rms_over_bound_literal);
  j.number("centroid_ideal_over_bound", b.centroid_ideal_over_bound);
  j.number("centroid_rms_over_own_bound", b.centroid_rms_over_own_bound);
  j.integer("n_flux", b.n_flux);
  j.number("flux_ratio_median", b.flux_ratio_median);
  j.number("flux_scatter", b.flux_scatter);
  j.number("flux_bound_simple", b.flux_bound_simple);
  j.number("flux_bound_full", b.flux_bound_full);
  j.number("flux_scatter_over_bound", b.flux_scatter_over_bound);
  j.number("flux_bound_literal", b.flux_bound_literal);
  j.number("flux_scatter_over_bound_literal", b.flux_scatter_over_bound_literal);
  j.end_object();
}

void optional_string(JsonWriter& j, const char* key, const std::string& v) {
  if (v.empty()) {
    j.null(key);
  } else {
    j.string(key, v);
  }
}

std::string fmt(const char* f, double v) {
  if (!std::isfinite(v)) return "-";
  char buf[40];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string bin_label(const ScoreBin& b, bool headline) {
  if (!std::isfinite(b.snr_min)) return "all";
  if (headline) return "all>=" + fmt("%g", b.snr_min);
  if (!std::isfinite(b.snr_max)) return ">=" + fmt("%g", b.snr_min);
  return fmt("%g", b.snr_min) + "-" + fmt("%g", b.snr_max);
}

std::string text_row(const ScoreBin& b, bool headline = false) {
  char buf[400];
  std::snprintf(
      buf, sizeof buf,
      "%-9s %6ld %6ld %6ld %6s %6s %6ld %7s %7s %6s %6s %6s %5s %8s %8s %7s %7s %7s %6s\n",
      bin_label(b, headline).c_str(), b.n_true, b.n_true_clean, b.n_matched,
      fmt("%.3f", b.completeness).c_str(), fmt("%.3f", b.completeness_clean).c_str(), b.n_errors,
      fmt("%.4f", b.centroid_rms_px).c_str(), fmt("%.4f", b.centroid_bound_full_px).c_str(),
      fmt("%.2f", b.centroid_rms_over_bound).c_str(),
      fmt("%.2f", b.centroid_rms_over_bound_literal).c_str(),
      fmt("%.2f", b.centroid_ideal_over_bound).c_str(),
      fmt("%.2f", b.centroid_rms_over_own_bound).c_str(),
      fmt("%+.4f", b.centroid_bias_x_px).c_str(), fmt("%+.4f", b.centroid_bias_y_px).c_str(),
      fmt("%.4f", b.flux_ratio_median).c_str(), fmt("%.4f", b.flux_scatter).c_str(),
      fmt("%.4f", b.flux_bound_full).c_str(), fmt("%.2f", b.flux_scatter_over_bound).c_str());
  return buf;
}

}  // namespace

std::string score_to_json(const ScoreInputs& in, const ScoreReport& r) {
  JsonWriter j;
  j.begin_object();
  j.integer("schema_version", 2);
  j.string("catalogue", in.catalogue);
  j.string("truth", in.truth);
  if (in.frame_id >= 0) {
    j.begin_object("catalogue_frame");
    j.integer("frame_id", in.frame_id);
    j.string("name", in.frame_name);
    j.end_object();
  } else {
    j.null("catalogue_frame");
  }
  j.begin_object("columns");
  j.string("x", in.columns.x);
  j.string("y", in.columns.y);
  optional_string(j, "flux", in.columns.flux);
  optional_string(j, "flags", in.columns.flags);
  j.boolean("one_based", in.columns.one_based);
  j.end_object();
  j.begin_object("frame");
  j.integer("width", in.frame.width);
  j.integer("height", in.frame.height);
  j.number("gain_e_per_adu", in.frame.gain_e_per_adu);
  j.end_object();
  const ScoreConfig& c = in.config;
  j.begin_object("config");
  j.number("match_radius_px", c.match_radius_px);
  j.number("clean_border_px", c.clean_border_px);
  j.number("clean_neighbour_radius_px", c.clean_neighbour_radius_px);
  j.number("clean_neighbour_flux_ratio", c.clean_neighbour_flux_ratio);
  j.begin_array("snr_bin_edges");
  for (double e : c.snr_bin_edges) j.number(nullptr, e);
  j.end_array();
  j.number("headline_min_snr", c.headline_min_snr);
  j.number("saturated_exclusion_radius_px", c.saturated_exclusion_radius_px);
  j.integer("reject_flags", static_cast<long>(c.reject_flags));
  j.number("stamp_radius_sigma", c.stamp_radius_sigma);
  j.integer("snr50_bins_per_decade", c.snr50_bins_per_decade);
  j.integer("snr50_min_stars", c.snr50_min_stars);
  j.end_object();
  j.begin_object("counts");
  j.integer("n_true", r.n_true);
  j.integer("n_measured", r.n_measured);
  j.integer("n_measured_invalid", r.n_measured_invalid);
  j.integer("n_measured_rejected", r.n_measured_rejected);
  j.integer("n_matched", r.n_matched);
  j.integer("n_false", r.n_false);
  j.integer("n_false_excluded_near_saturated", r.n_false_excluded_near_saturated);
  j.end_object();
  j.number("snr_at_50pct_completeness", r.snr_at_50pct_completeness);
  j.number("snr_at_50pct_completeness_clean", r.snr_at_50pct_completeness_clean);
  write_bin(j, "overall", r.overall);
  write_bin(j, "headline", r.headline);
  j.begin_array("bins");
  for (const auto& b : r.bins) write_bin(j, nullptr, b);
  j.end_array();
  j.end_object();
  return j.str();
}

std::string score_to_text(const ScoreInputs& in, const ScoreReport& r) {
  std::string s =
      "psfphot score: " + in.catalogue +
      (in.frame_id >= 0 ? " frame " + std::to_string(in.frame_id) + " (" + in.frame_name + ")"
                        : "") +
      " vs " + in.truth + "\n";
  s += "  columns: x=" + in.columns.x + " y=" + in.columns.y +
       " flux=" + (in.columns.flux.empty() ? "-" : in.columns.flux) +
       " flags=" + (in.columns.flags.empty() ? "-" : in.columns.flags) +
       (in.columns.one_based ? " (1-based, 1 subtracted)" : "") + "\n";
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "  frame %d x %d, gain %g e-/ADU; match radius %g px\n"
                "  truth %ld stars; measured %ld (%ld invalid, %ld rejected by flags); "
                "matched %ld\n"
                "  false detections %ld (+%ld unmatched near saturated stars, not counted)\n"
                "  S/N at 50%% completeness: %s (clean stars: %s)\n\n",
                in.frame.width, in.frame.height, in.frame.gain_e_per_adu, in.config.match_radius_px,
                r.n_true, r.n_measured, r.n_measured_invalid, r.n_measured_rejected, r.n_matched,
                r.n_false, r.n_false_excluded_near_saturated,
                fmt("%.3g", r.snr_at_50pct_completeness).c_str(),
                fmt("%.3g", r.snr_at_50pct_completeness_clean).c_str());
  s += buf;
  s += "errors: clean matched stars only; bound = full Cramer-Rao bound (median, star photon "
       "noise with gain x flat response); r/lit = rms over the literal bound (raw gain, "
       "../shared/peers); rms and bias per axis, px\n";
  std::snprintf(buf, sizeof buf,
                "%-9s %6s %6s %6s %6s %6s %6s %7s %7s %6s %6s %6s %5s %8s %8s %7s %7s %7s %6s\n",
                "S/N", "n_true", "clean", "match", "compl", "c_cln", "n_err", "rms", "bound",
                "r/bnd", "r/lit", "ideal", "z", "bias_x", "bias_y", "f_ratio", "f_scat", "f_bnd",
                "s/bnd");
  s += buf;
  s += text_row(r.overall);
  s += text_row(r.headline, true);
  for (const auto& b : r.bins) s += text_row(b);
  return s;
}

}  // namespace psfphot::apps
