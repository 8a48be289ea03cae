# Included by this directory's CMakeLists.txt.
mcpmw_test(mcp_headers_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/mcp_headers_test.cc
           LIBS mcpmw_mcp_headers)
