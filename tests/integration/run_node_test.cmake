# Runs one integration test file with `node --test`, after checking that its npm dependencies
# are installed. Invoked by CTest: cmake -DNODE=… -DINTEGRATION_DIR=… -DTEST_FILE=… -P this.
if(NOT EXISTS "${INTEGRATION_DIR}/node_modules/@modelcontextprotocol/sdk/package.json"
   OR NOT EXISTS "${INTEGRATION_DIR}/node_modules/@modelcontextprotocol/server-everything/package.json")
  message(FATAL_ERROR
    "${INTEGRATION_DIR}/node_modules is missing or incomplete: "
    "run `make test` (it runs npm ci in tests/integration)")
endif()
execute_process(
  COMMAND "${NODE}" --test --test-reporter=spec "${TEST_FILE}"
  WORKING_DIRECTORY "${INTEGRATION_DIR}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "node --test ${TEST_FILE} failed (exit ${rc})")
endif()
