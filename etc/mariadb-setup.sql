-- The shortd database on a MariaDB server of its own host (what the
-- Debian package's instructions use):
--
--   mariadb < /usr/share/shortd/mariadb-setup.sql
--
-- run as root (MariaDB's root logs in by unix_socket).  Creates the
-- database and the user shortd, who logs in by unix_socket too: the
-- daemon runs as the system user shortd and needs no password.  Then
-- applies the schema, which is idempotent and upgrades an older one in
-- place, so this file may be run again after an upgrade of shortd.
-- shortd only reads and writes rows; the schema is changed here, by root.

CREATE DATABASE IF NOT EXISTS shortd
    CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS 'shortd'@'localhost' IDENTIFIED VIA unix_socket;
GRANT SELECT, INSERT, UPDATE, DELETE ON shortd.* TO 'shortd'@'localhost';
USE shortd;
SOURCE /usr/share/shortd/schema.sql;
