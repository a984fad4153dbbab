PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_requests` (
	`request_id` text NOT NULL,
	`caller` text DEFAULT '' NOT NULL,
	`method` text NOT NULL,
	`gid` text NOT NULL,
	`fingerprint` text DEFAULT '' NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`request_id`, `caller`)
);
--> statement-breakpoint
INSERT INTO `__new_requests`("request_id", "caller", "method", "gid", "fingerprint", "created_at") SELECT "request_id", '', "method", "gid", '', "created_at" FROM `requests`;--> statement-breakpoint
DROP TABLE `requests`;--> statement-breakpoint
ALTER TABLE `__new_requests` RENAME TO `requests`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `requests_created_idx` ON `requests` (`created_at`);