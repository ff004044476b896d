"""A structure-aware fuzzer for the checkpoint readers (issue 16): mutated files of every format are
read in a child process with memory and time caps; each must read or fail with one line naming it.

Short run: ``tests/fuzz/test_fuzz.py`` (part of ``pytest``). Long run: ``python -m tests.fuzz``.
"""
