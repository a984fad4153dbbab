-- Gids, branch ids, request ids, callers and owners are compared byte for byte, as on SQLite: under
-- the default case-insensitive collation "Order-1" and "order-1" were one primary key on MySQL.
ALTER TABLE `transactions` MODIFY `gid` varchar(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, MODIFY `owner` varchar(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;--> statement-breakpoint
ALTER TABLE `branches` MODIFY `gid` varchar(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, MODIFY `branch_id` varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;--> statement-breakpoint
ALTER TABLE `requests` MODIFY `request_id` varchar(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, MODIFY `caller` varchar(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '', MODIFY `gid` varchar(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
