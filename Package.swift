// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Syncwright",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "syncwright", targets: ["syncwright"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .systemLibrary(
            name: "CLDAP",
            pkgConfig: "ldap",
            providers: [.apt(["libldap-dev"])]
        ),
        // known_hosts files, read and written by libssh2 (which libgit2 speaks SSH through).
        .systemLibrary(
            name: "CSSH2",
            pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"])]
        ),
        // The PostgreSQL state store, through libpq (see docs/architecture.md for why not postgres-nio).
        .systemLibrary(
            name: "CPostgres",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Two glibc calls Swift's Glibc module leaves out: children that inherit nothing they
        // were not given (tests' daemons, git over a pipe).
        .systemLibrary(name: "CSpawn"),
        // Sending notifications: mail over SMTP and webhooks over HTTP, both through libcurl.
        .target(name: "Notify", dependencies: ["CCurl"]),
        // Threads, parallel maps and task signals: the one place work leaves the caller's thread.
        .target(name: "Concurrency"),
        .target(name: "GitKit", dependencies: ["CGit2", "CSSH2", "CSpawn"]),
        .target(name: "Manifests", dependencies: [
            "Concurrency",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "StateStore", dependencies: [
            "Reports",
            "Manifests",
            "CPostgres",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .target(name: "Scheduling", dependencies: ["Manifests"]),
        .target(name: "Planner", dependencies: ["Manifests", "Scheduling"]),
        .target(name: "Directory", dependencies: ["CLDAP", "Concurrency"]),
        .target(name: "Sync", dependencies: ["Concurrency", "Directory", "Manifests"]),
        .target(name: "Reports", dependencies: ["GitKit"]),
        .target(name: "Reconciler", dependencies: [
            "Concurrency", "GitKit", "Manifests", "StateStore", "Planner", "Scheduling", "Sync", "Directory", "Reports", "Notify",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
        ]),
        // The daemon's HTTP endpoints: /metrics, /healthz, /readyz and the push webhook.
        .target(name: "Operations", dependencies: [
            "Reconciler", "Reports", "StateStore", "Concurrency",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The CLI sees the Reconciler (and the endpoints that serve it) only: what it shows comes from there.
        .executableTarget(name: "syncwright", dependencies: [
            "Reconciler", "Operations",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Fixtures for tests only: temp folders, real git repositories made with the git CLI, processes.
        .target(name: "TestSupport", dependencies: ["CSpawn"], path: "Tests/TestSupport"),
        .testTarget(name: "GitKitTests", dependencies: ["GitKit", "TestSupport"]),
        .testTarget(name: "ManifestsTests", dependencies: ["Manifests", "TestSupport"]),
        .testTarget(name: "StateStoreTests", dependencies: ["StateStore", "Manifests", "Reports", "TestSupport"]),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling", "Manifests", "TestSupport"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "Manifests"]),
        .testTarget(name: "ConcurrencyTests", dependencies: ["Concurrency"]),
        .testTarget(name: "NotifyTests", dependencies: ["Notify", "TestSupport"]),
        .testTarget(name: "DirectoryTests", dependencies: ["Directory", "TestSupport"]),
        .testTarget(name: "SyncTests", dependencies: ["Sync", "Directory", "Manifests", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "GitKit", "TestSupport"]),
        .testTarget(name: "ReconcilerTests", dependencies: ["Reconciler", "GitKit", "Manifests", "StateStore",
                                                            "Planner", "Reports", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["syncwright", "Sync", "TestSupport"]),
        .testTarget(name: "OperationsTests", dependencies: ["Operations", "Reconciler", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
