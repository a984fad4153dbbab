CREATE TABLE `requests` (
	`request_id` text PRIMARY KEY NOT NULL,
	`method` text NOT NULL,
	`gid` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `requests_created_idx` ON `requests` (`created_at`);