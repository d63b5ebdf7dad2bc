# The two commands of the README, and a few for the everyday loop.
.PHONY: run test bed-up bed-down fmt lint unit

## run: the local stack (test bed on 127.0.0.1; later issues add the functions and forwarder)
run:
	testbed/bin/run-local

## test: every test: fmt, clippy, unit and integration tests against a fresh test bed
test:
	testbed/bin/test-all

## bed-up / bed-down: start or stop a test bed for `cargo test` in your own shell
bed-up:
	testbed/bin/bed-up

bed-down:
	testbed/bin/bed-down

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## unit: the tests that need no bed
unit:
	cargo test --workspace --lib --bins
