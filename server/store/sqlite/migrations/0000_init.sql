CREATE TABLE `branches` (
	`gid` text NOT NULL,
	`branch_id` text NOT NULL,
	`op` text NOT NULL,
	`seq` integer NOT NULL,
	`target` text NOT NULL,
	`payload` blob NOT NULL,
	`after` text DEFAULT '[]' NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text DEFAULT '' NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`gid`, `branch_id`, `op`)
);
--> statement-breakpoint
CREATE TABLE `transactions` (
	`gid` text PRIMARY KEY NOT NULL,
	`mode` text NOT NULL,
	`status` text NOT NULL,
	`stalled` integer DEFAULT false NOT NULL,
	`options` text NOT NULL,
	`query_prepared` text DEFAULT '' NOT NULL,
	`traceparent` text DEFAULT '' NOT NULL,
	`last_error` text DEFAULT '' NOT NULL,
	`failed_branch_id` text DEFAULT '' NOT NULL,
	`failure_reason` text DEFAULT '' NOT NULL,
	`content_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`finished_at` integer,
	`next_attempt_at` integer,
	`deadline_at` integer,
	`owner` text,
	`lease_until` integer
);
--> statement-breakpoint
CREATE INDEX `transactions_due_idx` ON `transactions` (`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `transactions_created_idx` ON `transactions` (`created_at`,`gid`);--> statement-breakpoint
CREATE INDEX `transactions_status_idx` ON `transactions` (`status`,`created_at`);