-- The address holders of one exporter-day that can match a flow: family 4 = an IPv4 address
-- (prefix_len 32, key = the address), family 6 = an IPv6 prefix (key = its upper 64 bits as stored;
-- a flow address matches when address & mask = key), valid over [valid_from_ms, valid_to_ms)
-- (half-open, non-empty), with subscription_id, service_class and user_protocol (pppoe|ipoe).
-- Relations registered by the caller: pppoe_sessions,
-- ipoe_leases (reference §3.3).
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
)
SELECT
    family,
    prefix_len,
    key,
    valid_from_ms,
    valid_to_ms,
    subscription_id,
    service_class,
    user_protocol
FROM holders
WHERE key IS NOT NULL AND prefix_len IS NOT NULL AND valid_from_ms < valid_to_ms
