<?php
// compose-harden lab: ready when the pool accepts a TCP connection on 9000.
$s = @fsockopen('127.0.0.1', 9000, $errno, $errstr, 2);
exit($s ? 0 : 1);
