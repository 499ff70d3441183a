"""Quantification (核算): methodologies as data, activity records, footprints, reports.

A pure library: it writes files only where ingestion is told to, and never touches the log.

- methodology: definitions (quantify/methodologies/*.json), the library, register/eligibility bodies
- activity: one record: checks, integer-gram quantification, fingerprint, JCS bytes
- explain: formula, factors, inputs and result of any quantification (`POST /v1/quantify`)
- prepare, ingest: platform files to batches, rejections and unsigned activity.batch bodies
- account: the personal carbon account and inclusion proofs of records in their batches
- footprint, neutrality: enterprise and event footprints, neutrality plans and claims
- report: tonnes with three decimals and CSV export
"""
