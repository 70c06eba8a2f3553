-- Tables 3, 4 (spec §2.6), first step: estimated bytes (IN + OUT, every class, attributed or not) of
-- exporters of service $service in the week [$week_start_ms, $week_end_ms), by IP protocol number and,
-- for TCP (6) and UDP (17), port = the smaller of source and destination port (null otherwise).
-- Returns protocol_number, port, bytes (DOUBLE). Rows and shares are built in metrics.usage_by_port.
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order.
SELECT CAST(protocol AS INTEGER) AS protocol_number,
       CASE WHEN protocol IN (6, 17)
            THEN CAST(CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END AS INTEGER)
       END AS port,
       CAST(sum(CAST(bytes_est AS HUGEINT)) AS DOUBLE) AS bytes
FROM read_parquet($flows_glob, hive_partitioning = true)
WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
  AND service = $service
  AND flow_start_ms >= $week_start_ms AND flow_start_ms < $week_end_ms
GROUP BY ALL
ORDER BY protocol_number, port
