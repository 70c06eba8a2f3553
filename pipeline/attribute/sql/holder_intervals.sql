-- The time line of every (family, prefix_len, key) of address_holders cut at each validity edge:
-- one row per interval [start_ms, next edge of the key) with `holder`, the winning holder_ranks
-- number among the holders valid over it (the smallest: the tie order), or NULL (a gap, or after
-- the key's last holder ends); mask = the UBIGINT network mask of prefix_len (a flow address
-- matches a family 6 key when address & mask = key). Rows sorted by family, prefix_len, key, start_ms.
-- Relations registered by the caller: address_holders, holder_ranks.
WITH ranked AS (
    SELECT h.family, h.prefix_len, h.key, h.valid_from_ms, h.valid_to_ms, r.holder
    FROM address_holders AS h
    JOIN holder_ranks AS r
      ON h.subscription_id IS NOT DISTINCT FROM r.subscription_id
     AND h.service_class IS NOT DISTINCT FROM r.service_class
     AND h.user_protocol = r.user_protocol
),
edges AS (
    SELECT family, prefix_len, key, valid_from_ms AS start_ms FROM ranked
    UNION ALL  -- repeated edges fall together in the GROUP BY below
    SELECT family, prefix_len, key, valid_to_ms FROM ranked
)
SELECT
    e.family,
    e.prefix_len,
    CASE WHEN e.family = 4 THEN 4294967295::UBIGINT
         ELSE (18446744073709551615::UBIGINT >> (64 - e.prefix_len)) << (64 - e.prefix_len)
    END AS mask,
    e.key,
    e.start_ms,
    min(r.holder) AS holder
FROM edges AS e
LEFT JOIN ranked AS r
  ON r.family = e.family AND r.prefix_len = e.prefix_len AND r.key = e.key
 AND r.valid_from_ms <= e.start_ms AND e.start_ms < r.valid_to_ms
GROUP BY e.family, e.prefix_len, e.key, e.start_ms
ORDER BY e.family, e.prefix_len, e.key, e.start_ms
