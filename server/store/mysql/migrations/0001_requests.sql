CREATE TABLE `requests` (
	`request_id` varchar(128) NOT NULL,
	`method` varchar(32) NOT NULL,
	`gid` varchar(128) NOT NULL,
	`created_at` bigint NOT NULL,
	CONSTRAINT `requests_request_id` PRIMARY KEY(`request_id`)
);
--> statement-breakpoint
CREATE INDEX `requests_created_idx` ON `requests` (`created_at`);