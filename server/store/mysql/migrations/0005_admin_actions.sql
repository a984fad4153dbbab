CREATE TABLE `admin_actions` (
	`id` varchar(32) NOT NULL,
	`gid` varchar(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`action` varchar(32) NOT NULL,
	`branch_id` varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
	`op` varchar(16) NOT NULL DEFAULT '',
	`identity` varchar(512) NOT NULL,
	`reason` text NOT NULL,
	`at` bigint NOT NULL,
	CONSTRAINT `admin_actions_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE INDEX `admin_actions_gid_idx` ON `admin_actions` (`gid`,`at`);