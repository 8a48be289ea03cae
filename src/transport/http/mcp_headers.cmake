# The 2026-07-28 stateless era at the door: era detection, MCP header checks, server/discover
# from a legacy worker's initialize result (mcp_headers.h). Pure; included by this directory's
# CMakeLists.txt.
add_library(mcpmw_mcp_headers STATIC ${CMAKE_CURRENT_LIST_DIR}/mcp_headers.cc)
target_link_libraries(mcpmw_mcp_headers PUBLIC mcpmw_jsonrpc mcpmw_common simdjson::simdjson
                      absl::status absl::statusor absl::strings)
