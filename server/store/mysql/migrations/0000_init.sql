CREATE TABLE `branches` (
	`gid` varchar(128) NOT NULL,
	`branch_id` varchar(64) NOT NULL,
	`op` varchar(16) NOT NULL,
	`seq` int NOT NULL,
	`target` varchar(2048) NOT NULL,
	`payload` longblob NOT NULL,
	`after` text NOT NULL,
	`status` varchar(16) NOT NULL,
	`attempts` int NOT NULL DEFAULT 0,
	`last_error` text NOT NULL,
	`updated_at` bigint NOT NULL,
	CONSTRAINT `branches_gid_branch_id_op_pk` PRIMARY KEY(`gid`,`branch_id`,`op`)
);
--> statement-breakpoint
CREATE TABLE `transactions` (
	`gid` varchar(128) NOT NULL,
	`mode` varchar(8) NOT NULL,
	`status` varchar(16) NOT NULL,
	`stalled` boolean NOT NULL DEFAULT false,
	`options` text NOT NULL,
	`query_prepared` varchar(2048) NOT NULL DEFAULT '',
	`traceparent` varchar(256) NOT NULL DEFAULT '',
	`last_error` text NOT NULL,
	`failed_branch_id` varchar(64) NOT NULL DEFAULT '',
	`failure_reason` text NOT NULL,
	`content_hash` varchar(64) NOT NULL,
	`created_at` bigint NOT NULL,
	`updated_at` bigint NOT NULL,
	`finished_at` bigint,
	`next_attempt_at` bigint,
	`deadline_at` bigint,
	`owner` varchar(128),
	`lease_until` bigint,
	CONSTRAINT `transactions_gid` PRIMARY KEY(`gid`)
);
--> statement-breakpoint
CREATE INDEX `transactions_due_idx` ON `transactions` (`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `transactions_created_idx` ON `transactions` (`created_at`,`gid`);--> statement-breakpoint
CREATE INDEX `transactions_status_idx` ON `transactions` (`status`,`created_at`);