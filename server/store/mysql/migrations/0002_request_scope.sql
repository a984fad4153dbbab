ALTER TABLE `requests` ADD `caller` varchar(200) DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `requests` ADD `fingerprint` varchar(64) DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `requests` DROP PRIMARY KEY, ADD PRIMARY KEY(`request_id`,`caller`);