-- Tables 3, 4 (spec §2.6): the port-share rows of $service (broadband|mobile), from the flows of
-- exporters of service $exporter_service in the week [$week_start_ms, $week_end_ms) (IN + OUT, every
-- class, attributed or not). The port of a TCP/UDP flow is the smaller of its two ports.
-- share_pct = estimated bytes / all bytes * 100, unrounded, so (< 1024) + (>= 1024) = TCP up to float
-- error. Rows, in sort_key order, protocol by protocol (TCP, UDP, ESP, GRE, IP-ENCAP, ICMP with
-- ICMPv6, other; IP-ENCAP and other only if non-zero):
--   protocol_total  the protocol's share (TCP with $tcp_subtotals: exactly the two subtotals' sum)
--   subtotal        TCP (< 1024) and (>= 1024), each followed by its ports (only with $tcp_subtotals)
--   port            TCP/UDP ports carried from the previous edition ($carried_rows, 'tcp/443', …;
--                   0 if absent) and the year's top $top_ports_per_protocol ports per protocol with
--                   share_pct >= $min_share_pct_for_new_row, largest share first, then port number.
-- Returns service, row_id, protocol, port_label, row_kind, parent, share_pct (%), sort_key (0, 1, …),
-- share_pct_lo, share_pct_hi: share_pct -/+ $z standard errors under 1-in-N packet sampling, clipped
-- to [0, 100]. The delta method for a ratio of a part B_p to the total B that holds it (docs/
-- UNCERTAINTY.md): Var(B_p/B) = (V_p (1 - 2 s) + s^2 V) / B^2 with s = B_p/B, where V_p, V are sums
-- over the flows of bytes_est^2 * (1 - 1/sampling_interval) * (1/packets + $record_spread_sq) (each
-- rounded to an integer; user_week_usage.sql).
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) and shares are summed with exact_sum
-- (math.fsum, see run.py), so results do not depend on thread or row order.
WITH port_bytes AS (
    SELECT CAST(protocol AS INTEGER) AS protocol_number,
           CASE WHEN protocol IN (6, 17)
                THEN CAST(CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END AS INTEGER)
           END AS port,
           CAST(sum(CAST(bytes_est AS HUGEINT)) AS DOUBLE) AS bytes,
           CAST(sum(CAST(round(bytes_est * bytes_est * (1 - 1 / greatest(sampling_interval, 1))
                               * (1 / greatest(packets, 1) + $record_spread_sq)) AS HUGEINT)) AS DOUBLE)
               AS bytes_var
    FROM read_parquet($flows_glob, hive_partitioning = true)
    WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
      AND service = $exporter_service
      AND flow_start_ms >= $week_start_ms AND flow_start_ms < $week_end_ms
    GROUP BY ALL
),
protocols(proto, label, proto_order, always_shown) AS (
    VALUES ('tcp', 'TCP', 1, true), ('udp', 'UDP', 2, true), ('esp', 'ESP', 3, true),
           ('gre', 'GRE', 4, true), ('ipencap', 'IP-ENCAP', 5, false), ('icmp', 'ICMP', 6, true),
           ('other', 'other', 7, false)
),
protocol_numbers(protocol_number, proto) AS (
    VALUES (6, 'tcp'), (17, 'udp'), (50, 'esp'), (47, 'gre'), (4, 'ipencap'), (1, 'icmp'), (58, 'icmp')
),
port_names(port, name) AS (
    VALUES (22, 'ssh'), (53, 'dns'), (80, 'http'), (443, 'https'), (993, 'imaps'), (1935, 'rtmp'),
           (4500, 'nat-t')
),
total AS (
    SELECT CASE WHEN bytes > 0 THEN bytes
                ELSE error('usage_by_port: no ' || $service || ' traffic in the analysis week')
           END AS bytes,
           bytes_var
    FROM (SELECT exact_sum(list(bytes)) AS bytes, exact_sum(list(bytes_var)) AS bytes_var
          FROM port_bytes)
),
shares AS (  -- one row per protocol number and port
    -- times the reciprocal of the total, not divided by it: the rounding earlier editions had
    SELECT coalesce(n.proto, 'other') AS proto, b.port, b.bytes, b.bytes_var,
           b.bytes * (1 / t.bytes) * 100 AS share_pct
    FROM port_bytes AS b
    LEFT JOIN protocol_numbers AS n USING (protocol_number)
    CROSS JOIN total AS t
),
protocol_shares AS (
    SELECT p.proto, p.label, p.proto_order, p.always_shown,
           coalesce(exact_sum(list(s.bytes)), 0.0) / t.bytes * 100 AS share_pct,
           coalesce(exact_sum(list(s.bytes_var)), 0.0) AS bytes_var
    FROM protocols AS p
    LEFT JOIN shares AS s USING (proto)
    CROSS JOIN total AS t
    GROUP BY p.proto, p.label, p.proto_order, p.always_shown, t.bytes
),
tcp_subtotals AS (
    SELECT coalesce(exact_sum(list(share_pct) FILTER (WHERE port < 1024)), 0.0) AS lt1024,
           coalesce(exact_sum(list(share_pct) FILTER (WHERE port >= 1024)), 0.0) AS ge1024,
           coalesce(exact_sum(list(bytes_var) FILTER (WHERE port < 1024)), 0.0) AS lt1024_var,
           coalesce(exact_sum(list(bytes_var) FILTER (WHERE port >= 1024)), 0.0) AS ge1024_var
    FROM shares
    WHERE proto = 'tcp'
),
carried AS (
    SELECT split_part(item, '/', 1) AS proto, CAST(split_part(item, '/', 2) AS INTEGER) AS port
    FROM unnest(CAST($carried_rows AS VARCHAR[])) AS c(item)
),
top_ports AS (
    SELECT proto, port
    FROM (SELECT proto, port, share_pct,
                 row_number() OVER (PARTITION BY proto ORDER BY share_pct DESC, port) AS share_rank
          FROM shares
          WHERE proto IN ('tcp', 'udp'))
    WHERE share_rank <= $top_ports_per_protocol AND share_pct >= $min_share_pct_for_new_row
),
ports AS (
    SELECT c.proto, c.port, coalesce(s.share_pct, 0.0) AS share_pct,
           coalesce(s.bytes_var, 0.0) AS bytes_var,
           c.proto = 'tcp' AND $tcp_subtotals AS under_subtotal
    FROM (SELECT proto, port FROM carried UNION SELECT proto, port FROM top_ports) AS c
    LEFT JOIN shares AS s USING (proto, port)
    WHERE c.proto IN ('tcp', 'udp')
),
table_rows AS (  -- block orders the rows of a protocol: total, (< 1024), its ports, (>= 1024), its ports
    SELECT p.proto_order, 0 AS block, 0 AS port, 0.0 AS port_share_pct,
           CASE WHEN p.proto IN ('tcp', 'udp') THEN p.proto || '_total' ELSE p.proto END AS row_id,
           p.label AS protocol, p.label AS port_label, 'protocol_total' AS row_kind,
           NULL AS parent,
           CASE WHEN p.proto = 'tcp' AND $tcp_subtotals THEN h.lt1024 + h.ge1024
                ELSE p.share_pct
           END AS share_pct,
           p.bytes_var
    FROM protocol_shares AS p
    CROSS JOIN tcp_subtotals AS h
    WHERE p.always_shown OR p.share_pct <> 0
    UNION ALL
    SELECT 1, 1, 0, 0.0, 'tcp_lt1024', 'TCP', '(< 1024)', 'subtotal', 'tcp_total', lt1024,
           lt1024_var
    FROM tcp_subtotals
    WHERE $tcp_subtotals
    UNION ALL
    SELECT 1, 3, 0, 0.0, 'tcp_ge1024', 'TCP', '(>= 1024)', 'subtotal', 'tcp_total', ge1024,
           ge1024_var
    FROM tcp_subtotals
    WHERE $tcp_subtotals
    UNION ALL
    SELECT p.proto_order,
           CASE WHEN r.under_subtotal AND r.port >= 1024 THEN 4 ELSE 2 END,
           r.port, r.share_pct,
           r.proto || '_' || r.port,
           p.label,
           CASE WHEN n.name IS NULL THEN CAST(r.port AS VARCHAR) ELSE r.port || ' (' || n.name || ')' END,
           'port',
           CASE WHEN NOT r.under_subtotal THEN r.proto || '_total'
                WHEN r.port < 1024 THEN 'tcp_lt1024'
                ELSE 'tcp_ge1024'
           END,
           r.share_pct,
           r.bytes_var
    FROM ports AS r
    JOIN protocols AS p USING (proto)
    LEFT JOIN port_names AS n USING (port)
)
SELECT $service AS service, row_id, protocol, port_label, row_kind, parent, share_pct,
       row_number() OVER (ORDER BY proto_order, block, port_share_pct DESC, port) - 1 AS sort_key,
       greatest(share_pct - $z * se_pct, 0.0) AS share_pct_lo,
       least(share_pct + $z * se_pct, 100.0) AS share_pct_hi
FROM (SELECT r.*,
             100 * sqrt(greatest(r.bytes_var * (1 - 2 * r.share_pct / 100)
                                 + pow(r.share_pct / 100, 2) * t.bytes_var, 0.0)) / t.bytes AS se_pct
      FROM table_rows AS r
      CROSS JOIN total AS t)
ORDER BY sort_key
