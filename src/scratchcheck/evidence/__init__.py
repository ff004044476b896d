"""Evidence: per-pair numbers, tests against known nulls, unit matching and the verdict rules.

``metrics`` measures one aligned pair in one streaming pass; ``stats`` holds the tests, their
nulls and their combination; ``units`` matches MLP units, heads and experts under the network's
symmetries; ``verdict`` turns the tests of a component into a verdict, a kind and its words.
"""
