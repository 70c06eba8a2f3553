-- Each distinct holder identity of address_holders once, numbered by the matching rule's tie order
-- (holder 0 first): subscription_id, then user_protocol, then service_class (nulls last); with its
-- user_key = first 16 hex chars of sha256($salt || subscription_id || '/' || user_protocol), hashed
-- here once per holder instead of once per flow. Relation registered by the caller: address_holders.
SELECT
    row_number() OVER (ORDER BY subscription_id, user_protocol, service_class) - 1 AS holder,
    subscription_id,
    service_class,
    user_protocol,
    left(sha256($salt || subscription_id || '/' || user_protocol), 16) AS user_key
FROM (SELECT DISTINCT subscription_id, service_class, user_protocol FROM address_holders)
ORDER BY holder
