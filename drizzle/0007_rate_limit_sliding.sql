CREATE TABLE `rate_limit_log` (
	`key` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `rate_limit_log_key_at` ON `rate_limit_log` (`key`,`at`);--> statement-breakpoint
DROP TABLE `rate_limit_hits`;