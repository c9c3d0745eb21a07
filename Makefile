# tern: the two commands are `make run` and `make test` (see README.md).
JOBS ?= $(shell nproc)
# Seconds of libFuzzer time per fuzz target; FUZZ_JOBS targets run at a time.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= $(JOBS)

.PHONY: all deps build build-asan build-fuzz run test test-normal test-unit test-asan fuzz bench clean install deb

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
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_all

# The embedded default: 127.0.0.1:2525, any <user>@localhost into
# var/mail/<user>/Maildir/, spool in var/spool/ (see README.md).
run: build
	./build/tern serve

# The normal and the sanitized suites run side by side (their integration
# tests mostly wait on the daemon); each one's output comes whole when it
# ends. Then the fuzz targets, FUZZ_JOBS at a time.
test: build build-asan build-fuzz
	@$(MAKE) --no-print-directory -k -j2 --output-sync=target test-normal test-asan
	./tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_JOBS)

test-normal: build
	cd build && ctest --output-on-failure

test-asan: build-asan
	cd build-asan && ctest --output-on-failure

test-unit: build
	cd build && ctest --output-on-failure -E integration

fuzz: build-fuzz
	./tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_JOBS)

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
