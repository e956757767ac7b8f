# shellcheck shell=bash
#
# scripts/lib/demo-data.sh - the demo's shop database: four regions (A-D) of
# customers, orders and order items, plus a product catalogue.
#
# Source this file; do not execute it. It changes no shell options.
#
#   source scripts/lib/demo-data.sh
#   molt_demo_sql pg 20000 | psql -X -v ON_ERROR_STOP=1 -q -d "$url"
#   molt_demo_sql mysql 20000 | mariadb --no-defaults ... shop
#   molt_demo_seed pg "$url" 20000          # the same, with the right client
#
# The data is deterministic (a function of the row number), so two seeds of
# the same size are identical. Sizes for N orders: N/5 customers (at least 8),
# about 2N order items (1 to 3 per order), 200 products. Every customer
# belongs to one region; an order belongs to its customer's region; an
# order item belongs to its order's phase (`via` in examples/demo-plan.toml);
# products move whole in phase A, before the orders that reference them.
#
# Types worth migrating: bigserial / AUTO_INCREMENT keys (sequences),
# a composite primary key, NUMERIC/DECIMAL money, JSON attributes, timestamps,
# non-ASCII text with quotes, NULLs, a UNIQUE constraint, a CHECK and foreign
# keys (deferred by molt-load, created by finalize).

# molt_demo_sql ENGINE ORDERS: print the schema and data SQL (ENGINE pg or mysql).
molt_demo_sql() {
    local engine=${1:?usage: molt_demo_sql pg|mysql ORDERS} orders=${2:?usage: molt_demo_sql pg|mysql ORDERS}
    case $orders in
        '' | *[!0-9]*) printf 'demo-data.sh: ORDERS must be a number, not %s\n' "$orders" >&2; return 2 ;;
    esac
    if [ "$orders" -lt 8 ] || [ "$orders" -gt 99999999 ]; then
        printf 'demo-data.sh: ORDERS must be between 8 and 99999999\n' >&2
        return 2
    fi
    local customers=$((orders / 5))
    [ "$customers" -ge 8 ] || customers=8
    case $engine in
        pg) _molt_demo_sql_pg "$orders" "$customers" ;;
        mysql) _molt_demo_sql_mysql "$orders" "$customers" ;;
        *) printf 'demo-data.sh: unknown engine %s (pg or mysql)\n' "$engine" >&2; return 2 ;;
    esac
}

_molt_demo_sql_pg() {
    local n=$1 c=$2
    cat <<SQL
SET client_min_messages = warning;
CREATE TABLE products (
    id          integer PRIMARY KEY,
    sku         varchar(32) NOT NULL UNIQUE,
    name        text NOT NULL,
    price       numeric(10,2) NOT NULL CHECK (price >= 0),
    attributes  jsonb
);
CREATE TABLE customers (
    id          bigint PRIMARY KEY,
    region      char(1) NOT NULL,
    email       varchar(120) NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    region      char(1) NOT NULL,
    status      varchar(16) NOT NULL,
    ordered_at  timestamp NOT NULL,
    total       numeric(12,2) NOT NULL,
    note        text
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE TABLE order_items (
    order_id    bigint NOT NULL REFERENCES orders (id),
    line_no     integer NOT NULL,
    product_id  integer NOT NULL REFERENCES products (id),
    quantity    integer NOT NULL CHECK (quantity > 0),
    unit_price  numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

INSERT INTO products
SELECT p, 'SKU-' || lpad(p::text, 5, '0'),
       'Product ' || p || CASE p % 4 WHEN 0 THEN ' – Größe M' WHEN 1 THEN ' "deluxe"' WHEN 2 THEN ' 日本' ELSE '' END,
       ((p % 97) + 1) * 1.25,
       CASE WHEN p % 10 = 0 THEN NULL
            ELSE jsonb_build_object('color', (ARRAY['red', 'green', 'blue'])[1 + p % 3], 'weight_g', p * 10, 'tags', jsonb_build_array('t' || (p % 7))) END
FROM generate_series(1, 200) AS p;

INSERT INTO customers
SELECT c, chr(65 + c % 4), 'customer' || c || '@example.com',
       CASE c % 3 WHEN 0 THEN 'Zoë O''Brien ' || c WHEN 1 THEN 'Customer ' || c ELSE 'Jürgen Müller ' || c END,
       timestamptz '2020-01-01 00:00:00+00' + c * interval '37 minutes'
FROM generate_series(1, $c) AS c;

INSERT INTO orders (id, customer_id, region, status, ordered_at, total, note)
SELECT o, cid, chr(65 + (cid % 4)::int),
       (ARRAY['new', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + o % 5],
       timestamp '2021-01-01 00:00:00' + o * interval '53 seconds',
       5 + ((o * 37) % 50000) / 100.0,
       CASE WHEN o % 10 = 0 THEN 'gift wrap ✓ "fragile"' WHEN o % 10 = 1 THEN '' END
FROM (SELECT o, 1 + (o * 7919) % $c AS cid FROM generate_series(1::bigint, $n) AS o) AS s;
SELECT setval('orders_id_seq', $n);

INSERT INTO order_items
SELECT o, l, p.id, 1 + (o + l) % 4, p.price
FROM generate_series(1::bigint, $n) AS o
CROSS JOIN LATERAL generate_series(1, 1 + (o % 3)::int) AS l
JOIN products AS p ON p.id = 1 + (o * 31 + l * 17) % 200;

ANALYZE;
SQL
}

# The numbers 1..N without a helper table (the audit would find one that no
# phase mentions): a CTE of digits, cross-joined once per decimal place.
_molt_demo_numbers_mysql() {
    local n=$1 places=1 limit=10 i from= expr=
    while [ "$limit" -lt "$n" ]; do
        places=$((places + 1))
        limit=$((limit * 10))
    done
    expr="d0.d"
    from="d AS d0"
    for ((i = 1; i < places; i++)); do
        expr="$expr + $((10 ** i)) * d$i.d"
        from="$from CROSS JOIN d AS d$i"
    done
    printf 'WITH d AS (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9), '
    printf 'nums AS (SELECT %s + 1 AS n FROM %s) ' "$expr" "$from"
}

_molt_demo_sql_mysql() {
    local n=$1 c=$2
    cat <<SQL
SET NAMES utf8mb4;
CREATE TABLE products (
    id          INT PRIMARY KEY,
    sku         VARCHAR(32) NOT NULL UNIQUE,
    name        VARCHAR(200) NOT NULL,
    price       DECIMAL(10,2) NOT NULL CHECK (price >= 0),
    attributes  JSON
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE customers (
    id          BIGINT PRIMARY KEY,
    region      CHAR(1) NOT NULL,
    email       VARCHAR(120) NOT NULL UNIQUE,
    name        VARCHAR(200) NOT NULL,
    created_at  DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    region      CHAR(1) NOT NULL,
    status      VARCHAR(16) NOT NULL,
    ordered_at  DATETIME NOT NULL,
    total       DECIMAL(12,2) NOT NULL,
    note        TEXT,
    KEY orders_customer_id_idx (customer_id),
    CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE order_items (
    order_id    BIGINT NOT NULL,
    line_no     INT NOT NULL,
    product_id  INT NOT NULL,
    quantity    INT NOT NULL CHECK (quantity > 0),
    unit_price  DECIMAL(10,2) NOT NULL,
    PRIMARY KEY (order_id, line_no),
    CONSTRAINT order_items_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id),
    CONSTRAINT order_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO products (id, sku, name, price, attributes)
$(_molt_demo_numbers_mysql 200)
SELECT n, CONCAT('SKU-', LPAD(n, 5, '0')),
       CONCAT('Product ', n, CASE n % 4 WHEN 0 THEN ' – Größe M' WHEN 1 THEN ' "deluxe"' WHEN 2 THEN ' 日本' ELSE '' END),
       ((n % 97) + 1) * 1.25,
       CASE WHEN n % 10 = 0 THEN NULL
            ELSE JSON_OBJECT('color', ELT(1 + n % 3, 'red', 'green', 'blue'), 'weight_g', n * 10, 'tags', JSON_ARRAY(CONCAT('t', n % 7))) END
FROM nums WHERE n <= 200;

INSERT INTO customers (id, region, email, name, created_at)
$(_molt_demo_numbers_mysql "$c")
SELECT n, CHAR(65 + n % 4), CONCAT('customer', n, '@example.com'),
       CASE n % 3 WHEN 0 THEN CONCAT('Zoë O''Brien ', n) WHEN 1 THEN CONCAT('Customer ', n) ELSE CONCAT('Jürgen Müller ', n) END,
       TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (n * 37) MINUTE
FROM nums WHERE n <= $c;

INSERT INTO orders (id, customer_id, region, status, ordered_at, total, note)
$(_molt_demo_numbers_mysql "$n")
SELECT n, cid, CHAR(65 + cid % 4),
       ELT(1 + n % 5, 'new', 'paid', 'shipped', 'delivered', 'cancelled'),
       TIMESTAMP '2021-01-01 00:00:00' + INTERVAL (n * 53) SECOND,
       5 + ((n * 37) % 50000) / 100.0,
       CASE WHEN n % 10 = 0 THEN 'gift wrap ✓ "fragile"' WHEN n % 10 = 1 THEN '' END
FROM (SELECT n, 1 + (n * 7919) % $c AS cid FROM nums WHERE n <= $n) AS s;

INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price)
$(_molt_demo_numbers_mysql "$n")
SELECT o.n, l.l, p.id, 1 + (o.n + l.l) % 4, p.price
FROM nums AS o
JOIN (SELECT 1 AS l UNION ALL SELECT 2 UNION ALL SELECT 3) AS l ON l.l <= 1 + o.n % 3
JOIN products AS p ON p.id = 1 + (o.n * 31 + l.l * 17) % 200
WHERE o.n <= $n;

ANALYZE TABLE products, customers, orders, order_items;
SQL
}

# molt_demo_seed ENGINE URL ORDERS: create and fill the demo tables in the
# (empty) database at URL, with psql or the MariaDB/MySQL client.
molt_demo_seed() {
    local engine=${1:?} url=${2:?} orders=${3:?}
    case $engine in
        pg)
            molt_demo_sql pg "$orders" | psql -X -v ON_ERROR_STOP=1 -q -d "$url" >/dev/null
            ;;
        mysql)
            local client
            client=${MOLT_MYSQL_CLIENT:-$(command -v mariadb || command -v mysql)} || {
                printf 'demo-data.sh: no mariadb/mysql client found\n' >&2
                return 1
            }
            # mysql://user[:password]@host:port/db, split for the client; the
            # password goes through MYSQL_PWD, never the command line.
            local rest=${url#*://} auth hostport db user pass= host port
            auth=${rest%%@*}
            [ "$auth" != "$rest" ] || auth=root
            rest=${rest#*@}
            hostport=${rest%%/*}
            db=${rest#*/}
            db=${db%%\?*}
            user=${auth%%:*}
            [ "$user" = "$auth" ] || pass=${auth#*:}
            host=${hostport%%:*}
            port=3306
            [ "$host" = "$hostport" ] || port=${hostport##*:}
            molt_demo_sql mysql "$orders" \
                | MYSQL_PWD=$pass "$client" --no-defaults --protocol=TCP -h "$host" -P "$port" \
                    -u "$user" --default-character-set=utf8mb4 "$db" >/dev/null
            ;;
        *) printf 'demo-data.sh: unknown engine %s\n' "$engine" >&2; return 2 ;;
    esac
}
