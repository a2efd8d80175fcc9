# wasmgrid developer targets. CI runs .ci/run, which runs `go test -race -timeout 30m ./...`.

GO ?= go

.PHONY: run test check bench bench-tasks fuzz guests

run: ## run the word count on the embedded grid
	$(GO) run ./cmd/grid run examples/wordcount/job.toml

test: ## the test suite, with the race detector
	$(GO) test -race -timeout 30m ./...

check: ## formatting, vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./sdk/guest/... ./examples/wordcount/guest/... ./examples/logs/guest/go ./examples/topwords/guest/go ./examples/join/guest/go ./examples/pi/guest/go ./examples/pagerank/guest/go ./tests/guests/... ./wasmexec/testdata/testguest ./wasmexec/testdata/noabi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

bench: ## wasm against native Go, whole jobs and guest calls
	$(GO) test -run XXX -bench . -benchtime 3x ./examples/wordcount/ ./tests/

bench-tasks: ## task dispatch: many tiny tasks of one job, one-task jobs (grid bench tasks)
	$(GO) run ./cmd/grid bench tasks

fuzz: ## a short run of every fuzz target
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 20s ./internal/jobspec/
	$(GO) test -run XXX -fuzz FuzzParseManifest -fuzztime 20s ./wasmexec/
	$(GO) test -run XXX -fuzz FuzzExportGlobals -fuzztime 20s ./wasmexec/
	$(GO) test -run XXX -fuzz FuzzRun -fuzztime 20s ./sdk/guest/go/
	$(GO) test -run XXX -fuzz FuzzGrouped -fuzztime 20s ./sdk/guest/go/
	$(GO) test -run XXX -fuzz FuzzRecords -fuzztime 20s ./sdk/guest/go/
	$(GO) test -run XXX -fuzz FuzzBlockDecoder -fuzztime 20s ./shuffle/
	$(GO) test -run XXX -fuzz FuzzReadIndex -fuzztime 20s ./shuffle/
	$(GO) test -run XXX -fuzz FuzzMerge -fuzztime 20s ./shuffle/
	$(GO) test -run XXX -fuzz FuzzRead -fuzztime 20s ./internal/wire/
	$(GO) test -run XXX -fuzz FuzzRequest -fuzztime 20s ./shuffle/quicnet/
	$(GO) test -run XXX -fuzz FuzzSpill -fuzztime 20s ./shuffle/
	$(GO) test -run XXX -fuzz FuzzCheckModule -fuzztime 20s ./wasmexec/
	$(GO) test -run XXX -fuzz FuzzParamValue -fuzztime 20s ./internal/jobspec/
	$(GO) test -run XXX -fuzz FuzzScan -fuzztime 20s ./internal/batch/
	$(GO) test -run XXX -fuzz FuzzLoadConfig -fuzztime 20s ./grid/
	$(GO) test -run XXX -fuzz FuzzResolve -fuzztime 20s ./internal/storage/
	$(GO) test -run XXX -fuzz FuzzTokenFile -fuzztime 20s ./internal/tokens/
	$(GO) test -run XXX -fuzz FuzzAuditConfig -fuzztime 20s ./grid/
	$(GO) test -run XXX -fuzz FuzzBackupName -fuzztime 20s ./internal/audit/
	$(GO) test -run XXX -fuzz FuzzEnvelope -fuzztime 20s ./internal/raftlog/
	$(GO) test -run XXX -fuzz FuzzFrame -fuzztime 20s ./internal/raftlog/

guests: ## rebuild the prebuilt guest modules (examples) from their Rust, C and AssemblyScript sources
	for lang in rust c assemblyscript; do \
		bash sdk/guest/$$lang/build.sh examples/wordcount/guest/$$lang examples/wordcount/guest/$$lang/guest.wasm || exit 1; \
	done
	bash sdk/guest/rust/build.sh examples/logs/guest/rust examples/logs/guest/rust/guest.wasm
	mkdir -p bin
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o bin/wordcount-go.wasm ./examples/wordcount/guest/go
