-- data_quality helper: per exporter service in the week [$week_start_ms, $week_end_ms), estimated
-- bytes in total and of flows with no user (user_key null). Returns service, bytes, unattributed_bytes.
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order.
SELECT service,
       CAST(sum(CAST(bytes_est AS HUGEINT)) AS DOUBLE) AS bytes,
       coalesce(CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE user_key IS NULL) AS DOUBLE), 0.0) AS unattributed_bytes
FROM read_parquet($flows_glob, hive_partitioning = true)
WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
  AND flow_start_ms >= $week_start_ms AND flow_start_ms < $week_end_ms
GROUP BY service
ORDER BY service
