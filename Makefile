# oikos: the two commands are `make demo` and `make check`.
# make          build into build/ (oikosd, oikos)
# make check    install dependencies, build with ASan+UBSan into build/check, run every test
# make demo     install dependencies, build, start a local three-region cloud on loopback
# make bench    build optimised into build/bench and run the benchmarks
# make format   clang-format every C file

JOBS ?= $(shell nproc)
CMAKE ?= cmake

.PHONY: all deps check demo bench format clean

all:
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build build -j $(JOBS)

deps:
	@scripts/deps.sh

check: deps
	@$(CMAKE) -S . -B build/check -DCMAKE_BUILD_TYPE=Debug -DOIKOS_SANITIZE=ON >/dev/null
	@$(CMAKE) --build build/check -j $(JOBS)
	@cd build/check && ctest --output-on-failure -j $(JOBS)

demo: deps all
	@build/oikos dev up --dir .demo

bench: deps
	@$(CMAKE) -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	@$(CMAKE) --build build/bench -j $(JOBS)
	@bench/run.sh build/bench

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
