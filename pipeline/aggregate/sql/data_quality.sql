-- Report §1.2 and Appendix A: data-quality rows (item, scope, value as DOUBLE) from the registered
-- view ingest_reports (one row per exporter-day ingest report, ARCHITECTURE §3.2) and the attributed
-- flows of the week [$week_start_ms, $week_end_ms). In this order:
--   files, messages, records_in, records_decoded, records_quarantined, sequence_gaps   scope all
--   ingest_reports (how many), reports_violating_records_invariant (records_in is not
--     records_decoded + records_quarantined)                                          scope all
--   quarantined:<reason>, sampling_interval:<N> (records; by reason, then by N)        scope all
--   the six counters of each exporter, by exporter name                                scope exporter:<name>
--   unattributed_bytes_pct: estimated bytes of flows with no user / all bytes * 100,
--     NaN if none, by service                                                          scope service:<service>
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order.
WITH counter_items(item_order, item) AS (
    VALUES (1, 'files'), (2, 'messages'), (3, 'records_in'), (4, 'records_decoded'),
           (5, 'records_quarantined'), (6, 'sequence_gaps')
),
counts AS (  -- one row per report and counter
    UNPIVOT (SELECT exporter, files, messages, records_in, records_decoded, records_quarantined,
                    sequence_gaps
             FROM ingest_reports)
    ON files, messages, records_in, records_decoded, records_quarantined, sequence_gaps
    INTO NAME item VALUE n
),
quarantined AS (
    SELECT q.reason, q.records FROM (SELECT unnest(quarantine_by_reason) AS q FROM ingest_reports)
),
sampled AS (
    SELECT s.sampling_interval, s.records
    FROM (SELECT unnest(sampling_intervals) AS s FROM ingest_reports)
),
flow_bytes AS (
    SELECT service,
           CAST(sum(CAST(bytes_est AS HUGEINT)) AS DOUBLE) AS bytes,
           coalesce(CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE user_key IS NULL) AS DOUBLE), 0.0) AS unattributed_bytes
    FROM read_parquet($flows_glob, hive_partitioning = true)
    WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
      AND flow_start_ms >= $week_start_ms AND flow_start_ms < $week_end_ms
    GROUP BY service
),
quality_rows(section, name, number, item_order, item, scope, value) AS (
    SELECT 1, '', 0, c.item_order, c.item, 'all', CAST(coalesce(sum(n.n), 0) AS DOUBLE)
    FROM counter_items AS c
    LEFT JOIN counts AS n USING (item)
    GROUP BY c.item_order, c.item
    UNION ALL
    SELECT 2, '', 0, 0, 'ingest_reports', 'all', CAST(count(*) AS DOUBLE) FROM ingest_reports
    UNION ALL
    SELECT 3, '', 0, 0, 'reports_violating_records_invariant', 'all',
           CAST(count(*) FILTER (WHERE records_in <> records_decoded + records_quarantined) AS DOUBLE)
    FROM ingest_reports
    UNION ALL
    SELECT 4, reason, 0, 0, 'quarantined:' || reason, 'all', CAST(sum(records) AS DOUBLE)
    FROM quarantined
    GROUP BY reason
    UNION ALL
    SELECT 5, '', sampling_interval, 0, 'sampling_interval:' || sampling_interval, 'all',
           CAST(sum(records) AS DOUBLE)
    FROM sampled
    GROUP BY sampling_interval
    UNION ALL
    SELECT 6, n.exporter, 0, c.item_order, c.item, 'exporter:' || n.exporter, CAST(sum(n.n) AS DOUBLE)
    FROM counts AS n
    JOIN counter_items AS c USING (item)
    GROUP BY n.exporter, c.item_order, c.item
    UNION ALL
    SELECT 7, service, 0, 0, 'unattributed_bytes_pct', 'service:' || service,
           CASE WHEN bytes <> 0 THEN 100 * unattributed_bytes / bytes ELSE 'NaN'::DOUBLE END
    FROM flow_bytes
)
SELECT item, scope, value
FROM quality_rows
ORDER BY section, name, number, item_order
