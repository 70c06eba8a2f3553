-- The address holders of one exporter-day, resolved ahead of the flows: per (family, prefix_len, key)
-- the time line cut at every validity edge into intervals [start_ms, next edge) that carry their
-- winning holder, or none (held = false: a gap, or after the last holder ends). family 4 keys are
-- IPv4 addresses (prefix_len 32); family 6 keys are the upper 64 bits of an IPv6 prefix as stored
-- (a flow address matches when address & mask = key). Winner among the holders valid in an interval
-- (start_ms <= t < stop_ms, half-open): smallest subscription_id, then user_protocol, then
-- service_class (nulls last). user_key = first 16 hex chars of sha256($salt || subscription_id || '/'
-- || user_protocol), hashed here once per interval instead of once per flow. holder_rank orders the
-- winners the same way across keys (ties between an IPv4 /32 and an IPv6 /32 on one flow side).
-- mask is the network mask of prefix_len (UBIGINT). Rows sorted by family, prefix_len, key, start_ms.
-- Relations registered by the caller: pppoe_sessions, ipoe_leases (reference §3.3).
WITH holders AS (
    SELECT 4 AS family, 32::UTINYINT AS prefix_len, framed_v4::UBIGINT AS key,
           start_ms AS valid_from_ms, stop_ms AS valid_to_ms,
           subscription_id, service_class, 'pppoe' AS user_protocol
    FROM pppoe_sessions
    WHERE $service = 'pppoe' AND framed_v4 IS NOT NULL
    UNION ALL
    SELECT 6, v6_prefix_len, v6_prefix_hi, start_ms, stop_ms, subscription_id, service_class, 'pppoe'
    FROM pppoe_sessions
    WHERE $service = 'pppoe' AND v6_prefix_hi IS NOT NULL
    UNION ALL
    SELECT 6, v6_prefix_len, v6_prefix_hi, valid_from_ms, valid_to_ms,
           subscription_id, service_class, 'ipoe'
    FROM ipoe_leases
    WHERE $service = 'ipoe'
),
usable AS (  -- a holder that can match some flow: known key and length, non-empty validity
    SELECT * FROM holders
    WHERE key IS NOT NULL AND prefix_len IS NOT NULL AND valid_from_ms < valid_to_ms
),
edges AS (
    SELECT family, prefix_len, key, valid_from_ms AS start_ms FROM usable
    UNION
    SELECT family, prefix_len, key, valid_to_ms FROM usable
),
winners AS (
    SELECT e.family, e.prefix_len, e.key, e.start_ms, h.valid_from_ms IS NOT NULL AS held,
           h.subscription_id, h.service_class, h.user_protocol
    FROM edges AS e
    LEFT JOIN usable AS h
      ON h.family = e.family AND h.prefix_len = e.prefix_len AND h.key = e.key
     AND h.valid_from_ms <= e.start_ms AND e.start_ms < h.valid_to_ms
    QUALIFY row_number() OVER (
        PARTITION BY e.family, e.prefix_len, e.key, e.start_ms
        ORDER BY h.subscription_id, h.user_protocol, h.service_class
    ) = 1
)
SELECT
    family,
    prefix_len,
    CASE WHEN family = 4 THEN 4294967295::UBIGINT
         ELSE (18446744073709551615::UBIGINT >> (64 - prefix_len)) << (64 - prefix_len) END AS mask,
    key,
    start_ms,
    held,
    subscription_id,
    service_class,
    user_protocol,
    left(sha256($salt || subscription_id || '/' || user_protocol), 16) AS user_key,
    dense_rank() OVER (ORDER BY subscription_id, user_protocol, service_class) AS holder_rank
FROM winners
ORDER BY family, prefix_len, key, start_ms
