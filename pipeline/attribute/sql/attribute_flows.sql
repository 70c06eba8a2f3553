-- Attributed flows of one (local day, exporter) partition: every normalised flow exactly once, in
-- input order, without its addresses, plus service, user_key (first 16 hex chars of
-- sha256($salt || subscription_id || '/' || user_protocol)), user_protocol (pppoe|ipoe), service_class,
-- direction (IN = user sends, OUT = user receives) and bytes_est / packets_est (DOUBLE, counter × N).
-- On-net flows (both sides held by a subscriber): the row's user is the source side (IN, the sender)
-- and peer_user_key / peer_user_protocol / peer_service_class name the destination-side subscriber,
-- for whom the same flow is OUT (received); null for every other flow. One row per flow, so totals
-- never count a flow twice; only the per-user table reads the peer columns.
-- Relations registered by the caller: pppoe_sessions (reference §3.3), ipoe_leases (reference §3.3).
-- Matching: IPv4 address equal and start_ms <= flow_start_ms < stop_ms (half-open: at the hand-over
-- instant the next holder owns the address); IPv6 longest prefix (upper 64 bits) valid at
-- flow_start_ms; each side's best holder; the user is the source side's, else the destination's;
-- no match on either side → direction from flow_direction.
WITH flows AS (
    SELECT file_row_number AS flow_id, *
    FROM read_parquet($flows_path, file_row_number = true)
),
v4_holders AS (
    SELECT framed_v4 AS addr, start_ms AS valid_from_ms, stop_ms AS valid_to_ms,
           subscription_id, service_class, 'pppoe' AS user_protocol
    FROM pppoe_sessions
    WHERE $service = 'pppoe' AND framed_v4 IS NOT NULL
),
v6_holders AS (
    SELECT v6_prefix_hi AS prefix_hi, v6_prefix_len AS prefix_len, start_ms AS valid_from_ms,
           stop_ms AS valid_to_ms, subscription_id, service_class, 'pppoe' AS user_protocol
    FROM pppoe_sessions
    WHERE $service = 'pppoe' AND v6_prefix_hi IS NOT NULL
    UNION ALL
    SELECT v6_prefix_hi, v6_prefix_len, valid_from_ms, valid_to_ms,
           subscription_id, service_class, 'ipoe'
    FROM ipoe_leases
    WHERE $service = 'ipoe'
),
-- One network mask per prefix length in use: a prefix contains an address iff address & mask = prefix.
v6_masks AS (
    SELECT DISTINCT prefix_len,
           (18446744073709551615::UBIGINT >> (64 - prefix_len)) << (64 - prefix_len) AS mask
    FROM v6_holders
),
flow_sides AS (  -- side 0 = source address, side 1 = destination address
    SELECT flow_id, 0 AS side, src_v4 AS v4, src_v6_hi AS v6_hi, flow_start_ms FROM flows
    UNION ALL
    SELECT flow_id, 1 AS side, dst_v4 AS v4, dst_v6_hi AS v6_hi, flow_start_ms FROM flows
),
v6_masked AS (  -- each IPv6 side once per prefix length in use, address cut to that length
    SELECT s.flow_id, s.side, s.flow_start_ms, m.prefix_len, s.v6_hi & m.mask AS masked_hi
    FROM flow_sides AS s
    CROSS JOIN v6_masks AS m
    WHERE s.v6_hi IS NOT NULL
),
candidates AS (
    SELECT s.flow_id, s.side, 32 AS prefix_len, h.subscription_id, h.service_class, h.user_protocol
    FROM flow_sides AS s
    JOIN v4_holders AS h
      ON s.v4 = h.addr AND h.valid_from_ms <= s.flow_start_ms AND s.flow_start_ms < h.valid_to_ms
    UNION ALL
    SELECT s.flow_id, s.side, h.prefix_len, h.subscription_id, h.service_class, h.user_protocol
    FROM v6_masked AS s
    JOIN v6_holders AS h
      ON h.prefix_len = s.prefix_len AND h.prefix_hi = s.masked_hi
     AND h.valid_from_ms <= s.flow_start_ms AND s.flow_start_ms < h.valid_to_ms
),
best AS (  -- one holder per flow side: longest prefix, then smallest id
    SELECT flow_id, side, subscription_id, service_class, user_protocol
    FROM candidates
    QUALIFY row_number() OVER (
        PARTITION BY flow_id, side ORDER BY prefix_len DESC, subscription_id, user_protocol
    ) = 1
),
holders AS (  -- per flow: the source side's holder (src_*) and the destination side's (dst_*)
    SELECT flow_id,
           any_value(subscription_id) FILTER (WHERE side = 0) AS src_id,
           any_value(user_protocol) FILTER (WHERE side = 0) AS src_protocol,
           any_value(service_class) FILTER (WHERE side = 0) AS src_class,
           any_value(subscription_id) FILTER (WHERE side = 1) AS dst_id,
           any_value(user_protocol) FILTER (WHERE side = 1) AS dst_protocol,
           any_value(service_class) FILTER (WHERE side = 1) AS dst_class
    FROM best
    GROUP BY flow_id
)
SELECT
    f.exporter,
    f.observation_domain_id,
    f.flow_start_ms,
    f.flow_end_ms,
    f.ip_version,
    f.protocol,
    f.src_port,
    f.dst_port,
    f.flow_direction,
    f.octets,
    f.packets,
    f.sampling_interval,
    $service AS service,
    CASE WHEN h.src_id IS NOT NULL THEN left(sha256($salt || h.src_id || '/' || h.src_protocol), 16)
         WHEN h.dst_id IS NOT NULL THEN left(sha256($salt || h.dst_id || '/' || h.dst_protocol), 16)
    END AS user_key,
    coalesce(h.src_protocol, h.dst_protocol) AS user_protocol,
    CASE WHEN h.src_id IS NOT NULL THEN h.src_class ELSE h.dst_class END AS service_class,
    CASE WHEN h.src_id IS NOT NULL THEN 'IN'
         WHEN h.dst_id IS NOT NULL THEN 'OUT'
         WHEN f.flow_direction = 0 THEN 'IN'
         WHEN f.flow_direction = 1 THEN 'OUT' END AS direction,
    f.octets::DOUBLE * f.sampling_interval AS bytes_est,
    f.packets::DOUBLE * f.sampling_interval AS packets_est,
    CASE WHEN h.src_id IS NOT NULL AND h.dst_id IS NOT NULL
         THEN left(sha256($salt || h.dst_id || '/' || h.dst_protocol), 16) END AS peer_user_key,
    CASE WHEN h.src_id IS NOT NULL THEN h.dst_protocol END AS peer_user_protocol,
    CASE WHEN h.src_id IS NOT NULL THEN h.dst_class END AS peer_service_class
FROM flows AS f
LEFT JOIN holders AS h USING (flow_id)
ORDER BY f.flow_id
