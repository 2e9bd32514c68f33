CREATE TABLE `access_requests` (
	`id` text PRIMARY KEY NOT NULL,
	`staff_id` text NOT NULL,
	`org_id` text NOT NULL,
	`scope` text NOT NULL,
	`reason` text NOT NULL,
	`ticket` text,
	`duration_minutes` integer NOT NULL,
	`status` text NOT NULL,
	`customer_approval` text NOT NULL,
	`requested_at` integer NOT NULL,
	`decided_by` text,
	`decided_at` integer,
	`decision_comment` text,
	`customer_decided_by` text,
	`customer_decided_at` integer,
	`starts_at` integer,
	`expires_at` integer,
	`revoked_by` text,
	`revoked_at` integer,
	FOREIGN KEY (`org_id`) REFERENCES `orgs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `access_requests_staff_org_idx` ON `access_requests` (`staff_id`,`org_id`,`status`);--> statement-breakpoint
CREATE INDEX `access_requests_org_idx` ON `access_requests` (`org_id`,`requested_at`);--> statement-breakpoint
CREATE TABLE `staff_members` (
	`user_id` text PRIMARY KEY NOT NULL,
	`role` text NOT NULL,
	`nda_signed_at` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
