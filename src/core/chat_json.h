#pragma once
// Message parts as JSON, for the store (a session keeps tool calls, results, images and reasoning
// as they happened) and for GET /api/v1/sessions/{id}:
//   [{"type":"text","text":...}, {"type":"image","url":...} | {"type":"image","media_type","data"},
//    {"type":"tool_call","id","name","arguments"}, {"type":"tool_result","call_id","content","is_error"},
//    {"type":"reasoning","text","signature"[,"redacted":true]}]
#include <boost/json/array.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"

namespace sluice {

boost::json::array parts_to_json_array(const std::vector<content_part>& parts);
// Empty for no parts.
std::string parts_to_json(const std::vector<content_part>& parts);
// What parts_to_json wrote; parts it cannot read are skipped (empty text: no parts).
std::vector<content_part> parts_from_json(std::string_view text);

}  // namespace sluice
