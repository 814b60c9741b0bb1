"""Estado de cuenta: plan summaries, the REP list, exports, summary e-mails and balance alerts."""
