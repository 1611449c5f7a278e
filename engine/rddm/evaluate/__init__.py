"""Evaluation against classical pipelines (`rddm eval`) and benchmarks (`rddm bench`)."""
