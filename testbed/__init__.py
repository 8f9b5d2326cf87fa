"""A real Kubernetes test bed built from the upstream Go modules: the control
plane the tests, `make demo` and the benchmarks run rollbot against."""
