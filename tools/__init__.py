"""Developer tools, run from the checkout through ``make`` and never installed: the fuzzer, the
load test and its locustfile, the local server they start, the demo, the batch benchmark."""
