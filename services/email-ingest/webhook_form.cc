#include "email-ingest/webhook_form.h"

#include <curl/curl.h>
#include <gmime/gmime.h>

#include <algorithm>
#include <cctype>

#include "email-ingest/mime.h"

namespace leadflow::email {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool UrlDecode(std::string_view text, std::string* out) {
  std::string plus(text);
  std::replace(plus.begin(), plus.end(), '+', ' ');
  for (size_t i = 0; i < plus.size(); ++i) {
    if (plus[i] == '%' &&
        (i + 2 >= plus.size() || !std::isxdigit(static_cast<unsigned char>(plus[i + 1])) ||
         !std::isxdigit(static_cast<unsigned char>(plus[i + 2])))) {
      return false;
    }
  }
  int length = 0;
  char* decoded = curl_easy_unescape(nullptr, plus.data(), static_cast<int>(plus.size()), &length);
  if (decoded == nullptr) return false;
  out->assign(decoded, static_cast<size_t>(length));
  curl_free(decoded);
  return true;
}

absl::StatusOr<Form> ParseUrlencoded(std::string_view body, size_t max_fields) {
  Form form;
  while (!body.empty()) {
    size_t end = body.find('&');
    std::string_view pair = body.substr(0, end);
    body = end == std::string_view::npos ? std::string_view() : body.substr(end + 1);
    if (pair.empty()) continue;
    if (form.fields.size() >= max_fields) return absl::InvalidArgumentError("too many fields");
    size_t equals = pair.find('=');
    FormField field;
    if (!UrlDecode(pair.substr(0, equals), &field.name) ||
        (equals != std::string_view::npos && !UrlDecode(pair.substr(equals + 1), &field.value))) {
      return absl::InvalidArgumentError("bad %-escape");
    }
    form.fields.push_back(std::move(field));
  }
  return form;
}

absl::StatusOr<Form> ParseMultipart(std::string_view content_type, std::string_view body,
                                    size_t max_fields) {
  // GMime reads the body as the MIME entity it is, under its own Content-Type.
  std::string header = "Content-Type: " + std::string(content_type) + "\r\n\r\n";
  for (char c : content_type) {
    if (c == '\r' || c == '\n') return absl::InvalidArgumentError("bad Content-Type");
  }
  ParseMessage("");  // initialises GMime once
  GMimeStream* stream = g_mime_stream_mem_new();
  g_mime_stream_write(stream, header.data(), header.size());
  g_mime_stream_write(stream, body.data(), body.size());
  g_mime_stream_seek(stream, 0, GMIME_STREAM_SEEK_SET);
  GMimeParser* parser = g_mime_parser_new_with_stream(stream);
  g_object_unref(stream);
  GMimeObject* object = g_mime_parser_construct_part(parser, nullptr);
  g_object_unref(parser);
  if (object == nullptr || !GMIME_IS_MULTIPART(object)) {
    if (object) g_object_unref(object);
    return absl::InvalidArgumentError("not a multipart body");
  }
  Form form;
  GMimeMultipart* multipart = GMIME_MULTIPART(object);
  int count = g_mime_multipart_get_count(multipart);
  for (int i = 0; i < count; ++i) {
    GMimeObject* part = g_mime_multipart_get_part(multipart, i);
    if (form.fields.size() >= max_fields) {
      g_object_unref(object);
      return absl::InvalidArgumentError("too many fields");
    }
    FormField field;
    GMimeContentDisposition* disposition = g_mime_object_get_content_disposition(part);
    const char* name =
        disposition ? g_mime_content_disposition_get_parameter(disposition, "name") : nullptr;
    field.name = name ? name : "";
    if (!GMIME_IS_PART(part)) {
      // A file GMime reads as a structure of its own (message/rfc822, a multipart): described
      // by its name, type and size as any other file.
      const char* filename =
          disposition ? g_mime_content_disposition_get_parameter(disposition, "filename") : nullptr;
      field.is_file = true;
      field.filename = filename ? CharsetToUtf8(filename, "utf-8") : "";
      GMimeContentType* type = g_mime_object_get_content_type(part);
      char* mime_type = type ? g_mime_content_type_get_mime_type(type) : nullptr;
      field.content_type = mime_type ? Lower(mime_type) : "application/octet-stream";
      g_free(mime_type);
      GMimeObject* content = part;
      if (GMIME_IS_MESSAGE_PART(part)) {
        GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
        content = inner ? GMIME_OBJECT(inner) : nullptr;
      }
      GMimeStream* null_stream = g_mime_stream_null_new();
      if (content != nullptr && content != part) {
        g_mime_object_write_to_stream(content, nullptr, null_stream);
      } else if (content != nullptr) {
        g_mime_object_write_content_to_stream(content, nullptr, null_stream);
      }
      field.size_bytes = static_cast<int64_t>(GMIME_STREAM_NULL(null_stream)->written);
      g_object_unref(null_stream);
      form.fields.push_back(std::move(field));
      continue;
    }
    const char* filename = g_mime_part_get_filename(GMIME_PART(part));
    GMimeContentType* type = g_mime_object_get_content_type(part);
    char* mime_type = type ? g_mime_content_type_get_mime_type(type) : nullptr;
    field.content_type = mime_type ? Lower(mime_type) : "text/plain";
    g_free(mime_type);
    GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(part));
    if (filename != nullptr) {
      field.is_file = true;
      field.filename = CharsetToUtf8(filename, "utf-8");
      GMimeStream* null_stream = g_mime_stream_null_new();
      if (content) g_mime_data_wrapper_write_to_stream(content, null_stream);
      field.size_bytes = static_cast<int64_t>(GMIME_STREAM_NULL(null_stream)->written);
      g_object_unref(null_stream);
    } else if (content != nullptr) {
      GByteArray* array = g_byte_array_new();
      GMimeStream* out = g_mime_stream_mem_new_with_byte_array(array);
      g_mime_data_wrapper_write_to_stream(content, out);
      field.value.assign(reinterpret_cast<const char*>(array->data), array->len);
      field.size_bytes = static_cast<int64_t>(array->len);
      g_object_unref(out);
    }
    form.fields.push_back(std::move(field));
  }
  g_object_unref(object);
  return form;
}

}  // namespace

const FormField* Form::Find(std::string_view name) const {
  for (const FormField& field : fields) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

std::string Form::Value(std::string_view name) const {
  const FormField* field = Find(name);
  return field ? field->value : "";
}

absl::StatusOr<Form> ParseForm(std::string_view content_type, std::string_view body,
                               size_t max_fields) {
  std::string type = Lower(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  if (type == "application/x-www-form-urlencoded") return ParseUrlencoded(body, max_fields);
  if (type == "multipart/form-data") return ParseMultipart(content_type, body, max_fields);
  return absl::InvalidArgumentError("unsupported media type " + type);
}

}  // namespace leadflow::email
