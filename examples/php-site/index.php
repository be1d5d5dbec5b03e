<?php
// A minimal host site, as on the LAMP sites natter grew out of: its own
// users and login, and natter's chat on its pages. After its own login it
// signs a short-lived token for the user (natter_token) and puts the
// widget — and, if NATTER_ROOM is set, one room as a panel — on the page.
//
// Run next to natter (see examples/README.md):
//   NATTER_URL=http://127.0.0.1:8080 NATTER_SITE=school \
//   NATTER_SECRET=... NATTER_ISSUER=http://127.0.0.1:8000 \
//   php -S 127.0.0.1:8000 -t examples/php-site

declare(strict_types=1);
session_set_cookie_params(['httponly' => true, 'samesite' => 'Lax']);
session_start();

$natter_url = rtrim(getenv('NATTER_URL') ?: 'http://127.0.0.1:8080', '/');
$site = getenv('NATTER_SITE') ?: 'school';
$secret = getenv('NATTER_SECRET') ?: '';
$issuer = getenv('NATTER_ISSUER') ?: 'http://127.0.0.1:8000';
$room = (int) (getenv('NATTER_ROOM') ?: 0);
if (strlen($secret) < 32) {
    http_response_code(500);
    exit('Set NATTER_SECRET to the site\'s secret from natter.toml (32+ bytes).');
}
$_SESSION['csrf'] ??= bin2hex(random_bytes(16));

// The site's own accounts (a real site has a users table).
$users = [
    'lilei' => ['id' => '1001', 'name' => 'Li Lei', 'password' => 'lilei-password'],
    'hanmeimei' => ['id' => '1002', 'name' => 'Han Meimei', 'password' => 'hanmeimei-password'],
];

function h(string $text): string
{
    return htmlspecialchars($text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function b64url(string $data): string
{
    return rtrim(strtr(base64_encode($data), '+/', '-_'), '=');
}

/** An HS256 token natter exchanges for a session: valid two minutes, once. */
function natter_token(array $user, string $issuer, string $secret, int $room): string
{
    $now = time();
    $claims = [
        'sub' => $user['id'],
        'name' => $user['name'],
        'iss' => $issuer,
        'aud' => 'natter',
        'iat' => $now,
        'exp' => $now + 120,
        'jti' => bin2hex(random_bytes(16)),
    ];
    if ($room > 0) {
        $claims['rooms'] = [$room];
    }
    $body = b64url(json_encode(['alg' => 'HS256', 'typ' => 'JWT'])) . '.' . b64url(json_encode($claims));
    return $body . '.' . b64url(hash_hmac('sha256', $body, $secret, true));
}

$error = '';
if ($_SERVER['REQUEST_METHOD'] === 'POST' && !hash_equals($_SESSION['csrf'], (string) ($_POST['csrf'] ?? ''))) {
    http_response_code(400);
    exit('Please reload the page and try again.');
}
if ($_SERVER['REQUEST_METHOD'] === 'POST' && isset($_POST['logout'])) {
    session_destroy();
    header('Location: /');
    exit;
}
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $name = (string) ($_POST['username'] ?? '');
    $password = (string) ($_POST['password'] ?? '');
    if (isset($users[$name]) && hash_equals($users[$name]['password'], $password)) {
        session_regenerate_id(true);
        $_SESSION['user'] = $name;
        header('Location: /');
        exit;
    }
    $error = 'Wrong username or password.';
}
$user = isset($_SESSION['user']) ? $users[$_SESSION['user']] : null;

// The widget asks here for a fresh token before its natter session ends
// (data-token-url below): only for the signed-in user, never cached.
if (($_GET['natter-token'] ?? '') !== '') {
    header('Content-Type: application/json');
    header('Cache-Control: no-store');
    if ($user === null) {
        http_response_code(401);
        exit('{"error":"not signed in"}');
    }
    exit(json_encode(['token' => natter_token($user, $issuer, $secret, 0)]));
}
?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>No. 3 Middle School</title>
  <style>
    body { font-family: Georgia, serif; max-width: 760px; margin: 2rem auto; background: #fbf7ee; color: #333; }
    form { display: grid; gap: .5rem; max-width: 260px; }
    .error { color: #a00; }
  </style>
</head>
<body>
  <h1>No. 3 Middle School</h1>
<?php if ($user === null): ?>
  <p>Sign in to see your class.</p>
  <form method="post" action="/">
    <label>Username <input name="username" autocomplete="username"></label>
    <label>Password <input name="password" type="password" autocomplete="current-password"></label>
    <input type="hidden" name="csrf" value="<?= h($_SESSION['csrf']) ?>">
    <button type="submit">Sign in</button>
    <p class="error" role="alert"><?= h($error) ?></p>
  </form>
<?php else: ?>
  <form method="post" action="/">
    <p>Welcome, <?= h($user['name']) ?>.
      <input type="hidden" name="csrf" value="<?= h($_SESSION['csrf']) ?>">
      <button type="submit" name="logout" value="1">Sign out</button></p>
  </form>
<?php if ($room > 0): ?>
  <h2>Class group</h2>
  <iframe id="class-room" title="Class chat" style="width: 100%; height: 420px; border: 1px solid #ccc; border-radius: 8px"
    src="<?= h($natter_url) ?>/embed/rooms/<?= $room ?>?site=<?= h(rawurlencode($site)) ?>#token=<?= h(natter_token($user, $issuer, $secret, $room)) ?>"></iframe>
<?php endif ?>
  <script src="<?= h($natter_url) ?>/widget.js" data-site="<?= h($site) ?>"
    data-token="<?= h(natter_token($user, $issuer, $secret, $room)) ?>"
    data-token-url="/?natter-token=1" async></script>
<?php endif ?>
</body>
</html>
