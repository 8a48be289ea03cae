// mcpmw common: status helpers shared by every module.
//
// Modules return absl::Status / absl::StatusOr<T> across their boundaries; these macros keep
// call sites flat. The co_ twins are for Task<T> coroutines, which cannot use `return`.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MCPMW_STATUS_CONCAT_INNER(a, b) a##b
#define MCPMW_STATUS_CONCAT(a, b) MCPMW_STATUS_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define MCPMW_RETURN_IF_ERROR(expr)             \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return _st;                               \
    }                                           \
  } while (false)

#define MCPMW_CO_RETURN_IF_ERROR(expr)          \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      co_return _st;                            \
    }                                           \
  } while (false)

#define MCPMW_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) {                                  \
    return tmp.status();                            \
  }                                                 \
  lhs = std::move(*tmp)

// Declares or assigns `lhs` from a StatusOr expression, returning its status on error.
#define MCPMW_ASSIGN_OR_RETURN(lhs, expr) \
  MCPMW_ASSIGN_OR_RETURN_IMPL(MCPMW_STATUS_CONCAT(_statusor_, __LINE__), lhs, expr)

#define MCPMW_CO_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) {                                     \
    co_return tmp.status();                            \
  }                                                    \
  lhs = std::move(*tmp)

#define MCPMW_CO_ASSIGN_OR_RETURN(lhs, expr) \
  MCPMW_CO_ASSIGN_OR_RETURN_IMPL(MCPMW_STATUS_CONCAT(_statusor_, __LINE__), lhs, expr)
