# tern: the two commands are `make run` and `make test` (see README.md).
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60

.PHONY: all deps build build-asan build-fuzz run test test-unit test-asan fuzz bench clean install deb

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTERN_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

build-fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DTERN_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_cmd fuzz_path fuzz_data fuzz_envelope fuzz_sasl fuzz_dsn_param fuzz_mx fuzz_downgrade fuzz_control fuzz_http_req fuzz_logjson fuzz_pickup fuzz_addrlist fuzz_smtp_client fuzz_hdrscan fuzz_outbound fuzz_spf_record fuzz_spf_macro fuzz_spf_eval fuzz_dmarc_record fuzz_dmarc_from fuzz_authres fuzz_dmarc_report

# The embedded default: 127.0.0.1:2525, any <user>@localhost into
# var/mail/<user>/Maildir/, spool in var/spool/ (see README.md).
run: build
	./build/tern serve

test: build build-asan build-fuzz
	cd build && ctest --output-on-failure
	cd build-asan && ctest --output-on-failure
	./tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

test-unit: build
	cd build && ctest --output-on-failure -E integration

fuzz: build-fuzz
	./tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	./bench/run.sh

# Installs the binary, the sendmail/mailq/newaliases links, man pages, the
# systemd unit and an example config under $(PREFIX), staged into $(DESTDIR).
PREFIX ?= /usr/local
install: build
	DESTDIR="$(DESTDIR)" cmake --install build --prefix "$(PREFIX)"

# build-deb/tern_<version>_<arch>.deb (packaging/build-deb.sh).
deb: build
	./packaging/build-deb.sh build build-deb

clean:
	rm -rf build build-asan build-fuzz build-deb
