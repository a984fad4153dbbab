ALTER TABLE `transactions` ADD `lease_generation` bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `transactions` ADD `claim_token` varchar(32);