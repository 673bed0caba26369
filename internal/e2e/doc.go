// Package e2e holds the end-to-end tests: real carpd engines in network
// namespaces joined by bridges, driven by the handbook's runbooks verbatim
// through bin/bsd, next to real ucarp peers. They need root; in CI they must
// run, not skip.
package e2e
