// Package faultsuite holds only tests: the fault suite of the whole service. It builds the real
// rachel-admin binary, runs `serve` and `work` as real processes against PostgreSQL and an
// in-process Hetzner simulator, and proves that injected API errors, 429 storms, failing actions,
// SIGKILLed workers, several processes at once, a restarted database and bad input everywhere it
// enters leave nothing lost, orphaned, duplicated or stuck.
//
// The long tests are skipped with -short. RACHEL_ADMIN_BIN names a prebuilt binary to use
// instead of building one.
package faultsuite
