CREATE TABLE `admin_actions` (
	`id` text PRIMARY KEY NOT NULL,
	`gid` text NOT NULL,
	`action` text NOT NULL,
	`branch_id` text DEFAULT '' NOT NULL,
	`op` text DEFAULT '' NOT NULL,
	`identity` text NOT NULL,
	`reason` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `admin_actions_gid_idx` ON `admin_actions` (`gid`,`at`);