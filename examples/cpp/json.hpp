// A minimal JSON reader, enough for lossport metadata and tensor-file headers (no libraries).
// Strict (RFC 8259: UTF-8 text, no NaN, no trailing commas) and safe on hostile input: nesting
// is bounded (kMaxDepth), so a file of '[' characters is an error, not a stack overflow; every
// error is a std::runtime_error.
#pragma once

#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace json {

constexpr int kMaxDepth = 64;  // arrays and objects nested deeper than this are an error

struct Value {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0.0;
  bool integer = false;  // a Number written without fraction or exponent ("3", not "3.0" or "3e0")
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in file order

  // The member `key` of an object (the last one, as in Python and JavaScript, if repeated), or
  // nullptr when absent (or when this is not an object).
  const Value* find(const std::string& key) const {
    for (auto member = object.rbegin(); member != object.rend(); ++member) {
      if (member->first == key) return &member->second;
    }
    return nullptr;
  }

  // The member `key` of an object; throws when absent.
  const Value& at(const std::string& key) const {
    const Value* value = find(key);
    if (value == nullptr) throw std::runtime_error("JSON: missing key \"" + key + "\"");
    return *value;
  }
};

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  Value parse() {
    if (!valid_utf8(text_)) fail("not UTF-8 text");
    Value value = parse_value();
    skip_space();
    if (pos_ != text_.size()) fail("trailing characters");
    return value;
  }

 private:
  const std::string& text_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(pos_));
  }

  // UTF-8 as Python and JavaScript decode it: no overlong forms, surrogates or code points past U+10FFFF.
  static bool valid_utf8(const std::string& text) {
    const auto byte = [&](size_t i) { return i < text.size() ? static_cast<unsigned char>(text[i]) : 0; };
    const auto tail = [&](size_t i) { return byte(i) >= 0x80 && byte(i) <= 0xBF; };  // a continuation byte
    for (size_t i = 0; i < text.size();) {
      const unsigned c = byte(i), next = byte(i + 1);
      if (c < 0x80) {
        i += 1;
      } else if (c >= 0xC2 && c <= 0xDF && tail(i + 1)) {
        i += 2;
      } else if (c >= 0xE0 && c <= 0xEF && tail(i + 1) && tail(i + 2) &&
                 !(c == 0xE0 && next < 0xA0) && !(c == 0xED && next > 0x9F)) {
        i += 3;
      } else if (c >= 0xF0 && c <= 0xF4 && tail(i + 1) && tail(i + 2) && tail(i + 3) &&
                 !(c == 0xF0 && next < 0x90) && !(c == 0xF4 && next > 0x8F)) {
        i += 4;
      } else {
        return false;
      }
    }
    return true;
  }

  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }

  void skip_space() {  // JSON whitespace only (not \v or \f)
    while (at(' ') || at('\t') || at('\n') || at('\r')) ++pos_;
  }

  bool digits() {  // skips [0-9]*; whether there was one
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }

  bool consume_word(const char* word) {
    const std::string w(word);
    if (text_.compare(pos_, w.size(), w) != 0) return false;
    pos_ += w.size();
    return true;
  }

  Value parse_value(int depth = 0) {  // depth: arrays and objects around this value
    skip_space();
    Value value;
    if (pos_ >= text_.size()) fail("unexpected end");
    const char c = text_[pos_];
    if ((c == '{' || c == '[') && depth == kMaxDepth) fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (c == '{') {
      value.type = Value::Type::Object;
      ++pos_;
      if (consume('}')) return value;
      do {
        skip_space();
        std::string key = parse_string();
        expect(':');
        value.object.emplace_back(std::move(key), parse_value(depth + 1));
      } while (consume(','));
      expect('}');
    } else if (c == '[') {
      value.type = Value::Type::Array;
      ++pos_;
      if (consume(']')) return value;
      do {
        value.array.push_back(parse_value(depth + 1));
      } while (consume(','));
      expect(']');
    } else if (c == '"') {
      value.type = Value::Type::String;
      value.string = parse_string();
    } else if (consume_word("true") || consume_word("false")) {
      value.type = Value::Type::Bool;
      value.boolean = c == 't';
    } else if (consume_word("null")) {
      value.type = Value::Type::Null;
    } else {  // a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
      value.type = Value::Type::Number;
      value.integer = true;
      const size_t start = pos_;
      if (at('-')) ++pos_;
      if (at('0')) {
        ++pos_;
      } else if (!digits()) {
        fail("unexpected character");
      }
      if (at('.')) {
        ++pos_;
        value.integer = false;
        if (!digits()) fail("expected a digit");
      }
      if (at('e') || at('E')) {
        ++pos_;
        value.integer = false;
        if (at('+') || at('-')) ++pos_;
        if (!digits()) fail("expected a digit");
      }
      value.number = std::strtod(text_.substr(start, pos_ - start).c_str(), nullptr);  // +-HUGE_VAL if too large
    }
    return value;
  }

  unsigned hex4() {
    if (pos_ + 4 > text_.size()) fail("short \\u escape");
    unsigned code = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const char c = text_[pos_];
      if (!std::isxdigit(static_cast<unsigned char>(c))) fail("bad \\u escape");
      code = code * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return code;
  }

  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  std::string parse_string() {
    if (pos_ >= text_.size() || text_[pos_] != '"') fail("expected a string");
    ++pos_;
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) break;
      c = text_[pos_++];
      switch (c) {
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code = hex4();
          if (code >= 0xD800 && code < 0xDC00 && text_.compare(pos_, 2, "\\u") == 0) {  // a surrogate pair?
            const size_t high = pos_;
            pos_ += 2;
            const unsigned low = hex4();
            if (low >= 0xDC00 && low < 0xE000) {
              code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            } else {
              pos_ = high;  // a lone surrogate, then an unrelated escape
            }
          }
          append_utf8(out, code);
          break;
        }
        case '"': case '\\': case '/': out += c; break;
        default: --pos_; fail("bad escape");
      }
    }
    if (pos_ >= text_.size()) fail("unterminated string");
    ++pos_;
    return out;
  }
};

inline Value parse(const std::string& text) { return Parser(text).parse(); }

}  // namespace json
