-- Report §1.2 and Appendix A: data-quality rows (item, scope, value as DOUBLE) from the registered
-- views ingest_reports (one row per exporter-day ingest report, ARCHITECTURE §3.2; a counter an
-- older report lacks is 0) and report_weeks (week_start_ms, week_end_ms of the year's weeks), and
-- the attributed flows of the days read for the year ($read_days). In this order:
--   files, messages, records_in, records_decoded, records_quarantined, sequence_gaps,
--     duplicate_files, and the wire counters (template_redefinitions, records_second_pass,
--     records_default_sampling, invalid_sampling_announcements, duplicate_datagrams,
--     trailing_bytes, records_estimated_unsplittable)                              scope all
--   ingest_reports (how many), reports_violating_records_invariant (records_in is not
--     records_decoded + records_quarantined)                                          scope all
--   quarantined:<reason>, sampling_interval:<N> (records; by reason, then by N)        scope all
--   the counters of each exporter, by exporter name                                   scope exporter:<name>
--   unattributed_bytes_pct: estimated bytes of flows with no user / all bytes * 100,
--     NaN if none, by service                                                          scope service:<service>
--   max_quarantined_share_pct: the threshold ($max_quarantined_share_pct)             scope all
--   worst_quarantined_share_pct: the largest set-aside % of records in of a registered
--     exporter-day (ties: earliest day, then name)                   scope exporter_day:<name>/<date>
--   records_outside_weeks: decoded records of the days read whose start lies in no week of the
--     year (the neighbouring day of a UTC-dated folder; not errors, left out by the weeks)  scope all
--   reports_with_wire_counters: ingest reports that carry the wire counters (0: their zeros
--     above mean "not counted", not "none")                                           scope all
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order.
WITH counter_items(item_order, item) AS (
    VALUES (1, 'files'), (2, 'messages'), (3, 'records_in'), (4, 'records_decoded'),
           (5, 'records_quarantined'), (6, 'sequence_gaps'), (7, 'duplicate_files'),
           (8, 'template_redefinitions'), (9, 'records_second_pass'),
           (10, 'records_default_sampling'), (11, 'invalid_sampling_announcements'),
           (12, 'duplicate_datagrams'), (13, 'trailing_bytes'),
           (14, 'records_estimated_unsplittable')
),
counts AS (  -- one row per report and counter
    UNPIVOT (SELECT exporter, files, messages, records_in, records_decoded, records_quarantined,
                    sequence_gaps, duplicate_files, template_redefinitions, records_second_pass,
                    records_default_sampling, invalid_sampling_announcements,
                    duplicate_datagrams, trailing_bytes, records_estimated_unsplittable
             FROM ingest_reports)
    ON files, messages, records_in, records_decoded, records_quarantined, sequence_gaps,
       duplicate_files, template_redefinitions, records_second_pass, records_default_sampling,
       invalid_sampling_announcements, duplicate_datagrams, trailing_bytes,
       records_estimated_unsplittable
    INTO NAME item VALUE n
),
shares AS (  -- set-aside share of each registered exporter-day that read a record
    SELECT exporter, date, 100.0 * records_quarantined / records_in AS share_pct
    FROM ingest_reports
    WHERE records_in > 0 AND exporter <> $unregistered_exporter
),
worst_share AS (
    SELECT exporter, date, share_pct FROM shares ORDER BY share_pct DESC, date, exporter LIMIT 1
),
outside_weeks AS (  -- a flow in no week keeps one row with w NULL (in a week: only non-NULL rows);
    -- a join with the few week rows, not NOT EXISTS: that one groups every distinct flow_start_ms
    SELECT count(*) AS records
    FROM read_parquet($flows_glob, hive_partitioning = true) AS f
    LEFT JOIN report_weeks AS w
      ON f.flow_start_ms >= w.week_start_ms AND f.flow_start_ms < w.week_end_ms
    WHERE list_contains(CAST($read_days AS DATE[]), f.date)
      AND w.week_start_ms IS NULL
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
    UNION ALL
    SELECT 8, '', 0, 0, 'max_quarantined_share_pct', 'all', CAST($max_quarantined_share_pct AS DOUBLE)
    UNION ALL
    SELECT 9, '', 0, 0, 'worst_quarantined_share_pct', 'exporter_day:' || exporter || '/' || date,
           share_pct
    FROM worst_share
    UNION ALL
    SELECT 10, '', 0, 0, 'records_outside_weeks', 'all', CAST(records AS DOUBLE) FROM outside_weeks
    UNION ALL
    SELECT 11, '', 0, 0, 'reports_with_wire_counters', 'all',
           CAST(count(*) FILTER (WHERE wire_counters) AS DOUBLE)
    FROM ingest_reports
)
SELECT item, scope, value
FROM quality_rows
ORDER BY section, name, number, item_order
