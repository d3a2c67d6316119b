"""Evaluation: parsing answers leniently, scoring them deterministically, resumable runs, reports."""
