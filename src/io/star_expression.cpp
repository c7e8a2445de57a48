#include "psfphot/io/star_expression.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <queue>
#include <utility>

namespace psfphot::io {

const ColumnInfo* find_star_column(std::string_view name) {
  for (const auto& c : star_columns())
    if (name == c.name) return &c;
  return nullptr;
}

std::string star_column_list() {
  std::string out;
  for (const auto& c : star_columns()) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

double star_value(const Star& s, const ColumnInfo& c) {
  const char* p = reinterpret_cast<const char*>(&s) + c.offset;
  switch (c.type) {
    case ColumnType::kInt32: {
      std::int32_t v;
      std::memcpy(&v, p, sizeof v);
      return v;
    }
    case ColumnType::kInt64: {
      std::int64_t v;
      std::memcpy(&v, p, sizeof v);
      return static_cast<double>(v);
    }
    case ColumnType::kUInt32: {
      std::uint32_t v;
      std::memcpy(&v, p, sizeof v);
      return v;
    }
    case ColumnType::kFloat64: {
      double v;
      std::memcpy(&v, p, sizeof v);
      return v;
    }
    case ColumnType::kString: break;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// ---------------------------------------------------------------- expressions

namespace {

enum class Op {
  kConst,
  kColumn,
  kNeg,
  kNot,
  kAnd,
  kOr,
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  kBitAnd,
  kBitOr,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod
};

struct Node {
  Op op;
  double value = 0;                    // kConst
  const ColumnInfo* column = nullptr;  // kColumn
  int a = -1, b = -1;                  // operands (node indices)
};

bool truthy(double v) {
  return v != 0 && !std::isnan(v);
}

// Integer part for the bitwise operators: flags are uint32, ids int64.
std::int64_t as_int(double v) {
  if (!std::isfinite(v)) return 0;
  return static_cast<std::int64_t>(v);
}

}  // namespace

struct StarExpression::Impl {
  std::string text;
  std::vector<Node> nodes;
  int root = -1;
  std::vector<std::string> columns;

  double eval(int i, const Star& s) const {
    const Node& n = nodes[static_cast<std::size_t>(i)];
    switch (n.op) {
      case Op::kConst: return n.value;
      case Op::kColumn: return star_value(s, *n.column);
      case Op::kNeg: return -eval(n.a, s);
      case Op::kNot: return truthy(eval(n.a, s)) ? 0.0 : 1.0;
      case Op::kAnd: return truthy(eval(n.a, s)) && truthy(eval(n.b, s)) ? 1.0 : 0.0;
      case Op::kOr: return truthy(eval(n.a, s)) || truthy(eval(n.b, s)) ? 1.0 : 0.0;
      case Op::kLt: return eval(n.a, s) < eval(n.b, s) ? 1.0 : 0.0;
      case Op::kLe: return eval(n.a, s) <= eval(n.b, s) ? 1.0 : 0.0;
      case Op::kGt: return eval(n.a, s) > eval(n.b, s) ? 1.0 : 0.0;
      case Op::kGe: return eval(n.a, s) >= eval(n.b, s) ? 1.0 : 0.0;
      case Op::kEq: return eval(n.a, s) == eval(n.b, s) ? 1.0 : 0.0;
      case Op::kNe: {
        const double x = eval(n.a, s), y = eval(n.b, s);
        return !std::isnan(x) && !std::isnan(y) && x != y ? 1.0 : 0.0;
      }
      case Op::kBitAnd: return static_cast<double>(as_int(eval(n.a, s)) & as_int(eval(n.b, s)));
      case Op::kBitOr: return static_cast<double>(as_int(eval(n.a, s)) | as_int(eval(n.b, s)));
      case Op::kAdd: return eval(n.a, s) + eval(n.b, s);
      case Op::kSub: return eval(n.a, s) - eval(n.b, s);
      case Op::kMul: return eval(n.a, s) * eval(n.b, s);
      case Op::kDiv: return eval(n.a, s) / eval(n.b, s);
      case Op::kMod: return std::fmod(eval(n.a, s), eval(n.b, s));
    }
    return std::numeric_limits<double>::quiet_NaN();
  }
};

namespace {

// Recursive-descent parser over the text; builds Impl::nodes.
class Parser {
 public:
  Parser(std::string_view text, StarExpression::Impl& out) : t_(text), out_(out) {}

  int parse() {
    int r = parse_or();
    skip_space();
    if (pos_ < t_.size()) fail("unexpected '" + std::string(t_.substr(pos_, 12)) + "'");
    return r;
  }

 private:
  std::string_view t_;
  StarExpression::Impl& out_;
  std::size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw QueryError("--where \"" + std::string(t_) + "\": " + what + " at character " +
                     std::to_string(pos_ + 1));
  }

  int add(Node n) {
    out_.nodes.push_back(n);
    return static_cast<int>(out_.nodes.size()) - 1;
  }
  int binary(Op op, int a, int b) { return add(Node{op, 0, nullptr, a, b}); }

  void skip_space() {
    while (pos_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[pos_]))) ++pos_;
  }
  static bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
  // Consumes `s` (a symbol, or a word that must not continue as an identifier).
  bool accept(std::string_view s) {
    skip_space();
    if (t_.substr(pos_, s.size()) != s) return false;
    if (ident_char(s.back()) && pos_ + s.size() < t_.size() && ident_char(t_[pos_ + s.size()]))
      return false;
    pos_ += s.size();
    return true;
  }

  int parse_or() {
    int a = parse_and();
    while (accept("or") || accept("||")) a = binary(Op::kOr, a, parse_and());
    return a;
  }
  int parse_and() {
    int a = parse_not();
    while (accept("and") || accept("&&")) a = binary(Op::kAnd, a, parse_not());
    return a;
  }
  int parse_not() {
    skip_space();
    if (accept("not")) return binary(Op::kNot, parse_not(), -1);
    if (pos_ < t_.size() && t_[pos_] == '!' && (pos_ + 1 >= t_.size() || t_[pos_ + 1] != '=')) {
      ++pos_;
      return binary(Op::kNot, parse_not(), -1);
    }
    return parse_cmp();
  }
  int parse_cmp() {
    int a = parse_bitor();
    static constexpr std::pair<std::string_view, Op> kOps[] = {
        {"<=", Op::kLe}, {">=", Op::kGe}, {"==", Op::kEq}, {"!=", Op::kNe},
        {"<", Op::kLt},  {">", Op::kGt},  {"=", Op::kEq}};
    for (const auto& [sym, op] : kOps) {
      if (accept(sym)) {
        int b = parse_bitor();
        skip_space();
        for (const auto& [sym2, op2] : kOps)
          if (t_.substr(pos_, sym2.size()) == sym2)
            fail("chained comparison: use 'and' (a < x and x < b)");
        return binary(op, a, b);
      }
    }
    return a;
  }
  int parse_bitor() {
    int a = parse_bitand();
    for (;;) {
      skip_space();
      if (pos_ < t_.size() && t_[pos_] == '|' && (pos_ + 1 >= t_.size() || t_[pos_ + 1] != '|')) {
        ++pos_;
        a = binary(Op::kBitOr, a, parse_bitand());
      } else {
        return a;
      }
    }
  }
  int parse_bitand() {
    int a = parse_sum();
    for (;;) {
      skip_space();
      if (pos_ < t_.size() && t_[pos_] == '&' && (pos_ + 1 >= t_.size() || t_[pos_ + 1] != '&')) {
        ++pos_;
        a = binary(Op::kBitAnd, a, parse_sum());
      } else {
        return a;
      }
    }
  }
  int parse_sum() {
    int a = parse_product();
    for (;;) {
      if (accept("+"))
        a = binary(Op::kAdd, a, parse_product());
      else if (accept("-"))
        a = binary(Op::kSub, a, parse_product());
      else
        return a;
    }
  }
  int parse_product() {
    int a = parse_unary();
    for (;;) {
      if (accept("*"))
        a = binary(Op::kMul, a, parse_unary());
      else if (accept("/"))
        a = binary(Op::kDiv, a, parse_unary());
      else if (accept("%"))
        a = binary(Op::kMod, a, parse_unary());
      else
        return a;
    }
  }
  int parse_unary() {
    if (accept("-")) return binary(Op::kNeg, parse_unary(), -1);
    if (accept("+")) return parse_unary();
    return parse_primary();
  }
  int parse_primary() {
    skip_space();
    if (pos_ >= t_.size()) fail("expression ends too early");
    const char c = t_[pos_];
    if (c == '(') {
      ++pos_;
      int a = parse_or();
      if (!accept(")")) fail("missing ')'");
      return a;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      double v = 0;
      auto [end, ec] = std::from_chars(t_.data() + pos_, t_.data() + t_.size(), v);
      if (ec != std::errc()) fail("bad number");
      pos_ = static_cast<std::size_t>(end - t_.data());
      if (pos_ < t_.size() && ident_char(t_[pos_])) fail("bad number");
      return add(Node{Op::kConst, v, nullptr, -1, -1});
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const std::size_t start = pos_;
      while (pos_ < t_.size() && ident_char(t_[pos_])) ++pos_;
      const std::string name(t_.substr(start, pos_ - start));
      if (name == "nan") return add(Node{Op::kConst, std::nan(""), nullptr, -1, -1});
      if (name == "inf")
        return add(Node{Op::kConst, std::numeric_limits<double>::infinity(), nullptr, -1, -1});
      if (const ColumnInfo* col = find_star_column(name)) {
        if (std::find(out_.columns.begin(), out_.columns.end(), name) == out_.columns.end())
          out_.columns.push_back(name);
        return add(Node{Op::kColumn, 0, col, -1, -1});
      }
      for (std::uint32_t i = 0; i < star_flag::kCount; ++i)
        if (name == star_flag::name(1u << i))
          return add(Node{Op::kConst, static_cast<double>(1u << i), nullptr, -1, -1});
      pos_ = start;
      fail("unknown column '" + name + "' (columns: " + star_column_list() +
           "; flag names may be used as numbers, e.g. (flags & crowded) == 0)");
    }
    fail("unexpected '" + std::string(1, c) + "'");
  }
};

}  // namespace

StarExpression::StarExpression() : impl_(std::make_unique<Impl>()) {}
StarExpression::~StarExpression() = default;
StarExpression::StarExpression(const StarExpression& o) : impl_(std::make_unique<Impl>(*o.impl_)) {}
StarExpression& StarExpression::operator=(const StarExpression& o) {
  if (this != &o) impl_ = std::make_unique<Impl>(*o.impl_);
  return *this;
}
StarExpression::StarExpression(StarExpression&&) noexcept = default;
StarExpression& StarExpression::operator=(StarExpression&&) noexcept = default;

StarExpression StarExpression::parse(std::string_view text) {
  StarExpression e;
  e.impl_->text = std::string(text);
  Parser p(e.impl_->text, *e.impl_);
  e.impl_->root = p.parse();
  return e;
}

double StarExpression::evaluate(const Star& s) const {
  return impl_->root < 0 ? 1.0 : impl_->eval(impl_->root, s);
}
bool StarExpression::matches(const Star& s) const {
  return truthy(evaluate(s));
}
const std::vector<std::string>& StarExpression::columns() const {
  return impl_->columns;
}
const std::string& StarExpression::text() const {
  return impl_->text;
}

}  // namespace psfphot::io
